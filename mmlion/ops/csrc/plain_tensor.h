// What the host checks (layout_key.cpp, step_plan.cpp) call a plain tensor, and what the
// CPU kernels (lion_cpu.cpp) take.
#pragma once
#include <torch/extension.h>

// torch.Tensor or nn.Parameter exactly, as mmlion.ops.common.PLAIN_TYPES: no subclass
// (DTensor, FakeTensor), whose data pointer means nothing to a kernel and which may
// define its attributes itself.
inline bool is_plain_tensor(PyObject* item) {
  const PyObject* type = reinterpret_cast<PyObject*>(Py_TYPE(item));
  return type == THPVariableClass || type == ParameterClass;
}

// What the CPU kernels take: plain strided CPU tensors with storage, whose memory holds
// their values (no conjugate or negative bit, as torch's lazy .conj() and _neg_view set,
// which the raw loops would ignore). Tensor subclasses (DTensor and other Python-dispatch
// wrappers), meta and sparse tensors, and other devices are handed back to the caller
// untouched, never dereferenced. mmlion.ops.lion_cpu.takes is the same rule in Python.
inline bool kernel_takes(const at::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.layout() == at::kStrided && t.has_storage() &&
         !t.is_conj() && !t.is_neg() &&
         !t.unsafeGetTensorImpl()->is_python_dispatch() &&
         (t.numel() == 0 || t.const_data_ptr() != nullptr);
}

// kernel_takes for a Python object: False for anything that is not a Tensor (None).
inline bool kernel_takes_object(PyObject* item) {
  // is_plain_tensor first: an exact type compare, where THPVariable_Check is an isinstance
  return item != nullptr && (is_plain_tensor(item) || THPVariable_Check(item)) &&
         kernel_takes(THPVariable_Unpack(item));
}
