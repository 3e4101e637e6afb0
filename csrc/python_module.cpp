// The Python module dynamo_ext._C. Importing it loads this shared library,
// whose static initialisers register the ops with the dispatcher
// (torch.ops.dynamo_ext.*); the module itself only carries build facts that
// dynamo_ext/_extension.py checks at import time.
#include <Python.h>

#ifndef DYNAMO_EXT_TORCH_VERSION
#error "DYNAMO_EXT_TORCH_VERSION must be defined by the build (setup.py)"
#endif

#ifdef DYNAMO_EXT_WITH_CUDA
static const int kWithCuda = 1;
#else
static const int kWithCuda = 0;
#endif

extern "C" {
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", "dynamo_ext compiled ops", -1, nullptr};
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) return nullptr;
  if (PyModule_AddStringConstant(module, "TORCH_VERSION", DYNAMO_EXT_TORCH_VERSION) < 0 ||
      PyModule_AddIntConstant(module, "WITH_CUDA", kWithCuda) < 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
}
