// The layout key of lists of tensors (mmlion.ops.common.layout_key): for every tensor,
// where its memory starts, its dtype and device, its sizes and its strides, packed as
// int64 into one bytes object. Two keys are equal exactly when every tensor is laid out
// as before, so a host plan compares them with one memcmp instead of a Python pass per
// tensor. It reads the tensors behind the Python objects without copying them (no
// reference counting per tensor), and touches no data.
#include "layout_key.h"

#include "plain_tensor.h"

#include <cstdint>
#include <vector>

namespace {

// Plain tensors, strided, with storage, whose memory holds their values: no conjugate or
// negative bit (torch's lazy .conj() and _neg_view), which a kernel's raw loads would miss.
bool addressable(PyObject* item) {
  if (!is_plain_tensor(item)) return false;
  const at::Tensor& t = THPVariable_Unpack(item);
  return t.defined() && t.layout() == at::kStrided && t.has_storage() && !t.is_conj() &&
         !t.is_neg();
}

int64_t kind(const at::Tensor& t) {
  const c10::Device device = t.device();
  return (static_cast<int64_t>(t.scalar_type()) << 16) |
         (static_cast<int64_t>(device.type()) << 8) | (device.index() + 1);
}

}  // namespace

py::object layout_key(const py::args& lists) {
  std::vector<int64_t> key;
  for (const py::handle list : lists) {
    if (!PyList_Check(list.ptr())) {
      throw py::type_error("layout_key takes lists of tensors");
    }
    const Py_ssize_t n = PyList_GET_SIZE(list.ptr());
    key.reserve(key.size() + static_cast<size_t>(n) * 7 + 1);
    key.push_back(n);
    for (Py_ssize_t i = 0; i < n; ++i) {
      PyObject* item = PyList_GET_ITEM(list.ptr(), i);
      if (!addressable(item)) return py::none();
      const at::Tensor& t = THPVariable_Unpack(item);
      key.push_back(reinterpret_cast<int64_t>(t.const_data_ptr()));
      key.push_back(kind(t));
      key.push_back(t.dim());
      for (const int64_t size : t.sizes()) key.push_back(size);
      for (const int64_t stride : t.strides()) key.push_back(stride);
    }
  }
  return py::bytes(reinterpret_cast<const char*>(key.data()), key.size() * sizeof(int64_t));
}
