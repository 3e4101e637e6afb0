"""``import dynamo_ext`` as a library: it loads neither scikit-learn, SciPy, plotly nor matplotlib, and never
changes matplotlib's backend, not even when the report and its figures are used."""
import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def test_the_import_loads_only_what_the_core_api_needs():
    out = _run("import sys, dynamo_ext\n"
               "print(sorted(m for m in ('sklearn', 'scipy', 'plotly', 'matplotlib', 'dynamo_ext.report') "
               "if m in sys.modules))")
    assert out == "[]"


def test_lazy_names_load_on_first_use():
    out = _run("import sys, dynamo_ext as de\n"
               "r = de.report\n"
               "from dynamo_ext.report import analyze\n"  # computation: no plotting library
               "print(r.__name__, 'plotly' in sys.modules or 'matplotlib' in sys.modules, de.DYNAMO.__name__, "
               "'sklearn' in sys.modules)\n"
               "print(r.write_report.__module__, r.write_html.__module__)")
    assert out == "dynamo_ext.report False DYNAMO True\ndynamo_ext.report.markdown dynamo_ext.report.html"


def test_matplotlibs_backend_is_the_users_after_importing_and_plotting():
    code = ("import matplotlib\n"
            "matplotlib.use('svg')\n"
            "import dynamo_ext as de\n"
            "from dynamo_ext.report import plot_loss\n"
            "fig = plot_loss({'loss': [1.0, 0.5, 0.2]})\n"
            "import matplotlib.pyplot as plt\n"
            "print(matplotlib.get_backend(), type(fig).__name__, plt.get_fignums())")
    assert _run(code) == "svg Figure []"
