// What the host checks (layout_key.cpp, step_plan.cpp) call a plain tensor.
#pragma once
#include <torch/extension.h>

// torch.Tensor or nn.Parameter exactly, as mmlion.ops.common.PLAIN_TYPES: no subclass
// (DTensor, FakeTensor), whose data pointer means nothing to a kernel and which may
// define its attributes itself.
inline bool is_plain_tensor(PyObject* item) {
  const PyObject* type = reinterpret_cast<PyObject*>(Py_TYPE(item));
  return type == THPVariableClass || type == ParameterClass;
}
