"""A built wheel holds the compiled extension and the package, and nothing of the source tree."""
import sys
import zipfile

names = zipfile.ZipFile(sys.argv[1]).namelist()
ext = [n for n in names if n.startswith("dynamo_ext/_C") and n.endswith(".so")]
assert len(ext) == 1, f"the wheel must hold dynamo_ext/_C*.so once, got {ext}"
assert "dynamo_ext/ops.py" in names and "dynamo_ext/estimator.py" in names, "the wheel lacks the Python package"
packages = ("population", "meta", "uses", "dynamics", "compare", "report", "cli", "explorer")
missing = [p for p in packages if f"dynamo_ext/{p}/__init__.py" not in names]
assert not missing, f"the wheel lacks the subpackages {missing} (pyproject.toml [tool.setuptools] packages)"
stray = [n for n in names if not (n.startswith("dynamo_ext/") or n.split("/")[0].endswith(".dist-info"))]
assert not stray, f"the wheel holds paths outside the package: {stray[:10]}"
sources = [n for n in names if n.endswith((".cpp", ".cu", ".h", ".o"))]
assert not sources, f"the wheel holds build sources or objects: {sources[:10]}"
print(f"{sys.argv[1]}: {len(names)} files, extension {ext[0]}, no source-tree paths")
