// FrozenValue (frozen_value.h): freezing a plain Python value and matching a live one
// against it. Python errors raised by a comparison are cleared and read as "differs".
#include "frozen_value.h"

#include <torch/csrc/Device.h>
#include <torch/csrc/Dtype.h>

#include <string>
#include <vector>

struct FrozenValue::Detail {
  std::vector<FrozenValue> items;  // kSequence
  std::string format, bytes;       // kBuffer
  std::vector<Py_ssize_t> shape;   // kBuffer
};

FrozenValue::FrozenValue() = default;
FrozenValue::FrozenValue(FrozenValue&&) noexcept = default;
FrozenValue& FrozenValue::operator=(FrozenValue&&) noexcept = default;
FrozenValue::~FrozenValue() = default;

namespace {

constexpr int kMaxDepth = 8;  // deeper (or self-containing) sequences do not freeze

bool is_atom(PyObject* value) {
  return value == Py_None || PyBool_Check(value) || PyLong_CheckExact(value) ||
         PyFloat_CheckExact(value) || PyUnicode_CheckExact(value) ||
         PyBytes_CheckExact(value) || THPDtype_Check(value) || THPDevice_Check(value);
}

bool is_sequence(PyObject* value) {
  return PyList_CheckExact(value) || PyTuple_CheckExact(value);
}

// A value's buffer, C-contiguous, with its format and shape; false (no error left set)
// when it has none. Tensors have none; numpy arrays of Python objects refuse.
bool read_buffer(PyObject* value, std::string* format, std::vector<Py_ssize_t>* shape,
                 std::string* bytes) {
  if (!PyObject_CheckBuffer(value)) return false;
  Py_buffer view;
  if (PyObject_GetBuffer(value, &view, PyBUF_RECORDS_RO) != 0) {
    PyErr_Clear();
    return false;
  }
  *format = view.format != nullptr ? view.format : "B";
  shape->assign(view.shape, view.shape + view.ndim);
  bytes->resize(static_cast<size_t>(view.len));
  const bool copied = PyBuffer_ToContiguous(bytes->data(), &view, view.len, 'C') == 0;
  PyBuffer_Release(&view);
  if (!copied) PyErr_Clear();
  return copied;
}

}  // namespace

bool FrozenValue::freeze(PyObject* value, FrozenValue* out, int depth) {
  if (value == nullptr) {
    out->kind_ = kAbsent;
    return true;
  }
  if (is_atom(value)) {
    out->kind_ = kAtom;
    out->object_ = out->immutable_ = py::reinterpret_borrow<py::object>(value);
    return true;
  }
  if (depth >= kMaxDepth) return false;
  out->object_ = py::reinterpret_borrow<py::object>(reinterpret_cast<PyObject*>(Py_TYPE(value)));
  out->detail_ = std::make_unique<Detail>();
  Detail& detail = *out->detail_;
  if (is_sequence(value)) {
    out->kind_ = kSequence;
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(value);
    detail.items.resize(static_cast<size_t>(n));
    PyObject** items = PySequence_Fast_ITEMS(value);
    bool immutable = PyTuple_CheckExact(value);
    for (Py_ssize_t i = 0; i < n; ++i) {
      if (!freeze(items[i], &detail.items[i], depth + 1)) return false;
      immutable = immutable && detail.items[i].immutable_;
    }
    if (immutable) out->immutable_ = py::reinterpret_borrow<py::object>(value);
    return true;
  }
  out->kind_ = kBuffer;
  return read_buffer(value, &detail.format, &detail.shape, &detail.bytes);
}

bool FrozenValue::compare(PyObject* live, int depth) const {
  if (live == nullptr || kind_ == kAbsent) return live == nullptr && kind_ == kAbsent;
  switch (kind_) {
    case kAtom: {
      PyObject* frozen = object_.ptr();
      if (Py_TYPE(live) != Py_TYPE(frozen)) return false;
      if (live == frozen) return true;
      const py::object held = py::reinterpret_borrow<py::object>(live);  // == may run code
      const int equal = PyObject_RichCompareBool(live, frozen, Py_EQ);
      if (equal < 0) PyErr_Clear();
      return equal == 1;
    }
    case kSequence: {
      if (reinterpret_cast<PyObject*>(Py_TYPE(live)) != object_.ptr()) return false;
      const std::vector<FrozenValue>& items = detail_->items;
      const Py_ssize_t n = PySequence_Fast_GET_SIZE(live);
      if (static_cast<size_t>(n) != items.size()) return false;
      const py::object held = py::reinterpret_borrow<py::object>(live);
      for (Py_ssize_t i = 0; i < n; ++i) {  // by index: the size is read again each time
        if (PySequence_Fast_GET_SIZE(live) != n ||
            !items[i].matches(PySequence_Fast_GET_ITEM(live, i), depth + 1)) {
          return false;
        }
      }
      return true;
    }
    case kBuffer: {
      if (reinterpret_cast<PyObject*>(Py_TYPE(live)) != object_.ptr()) return false;
      std::string format, bytes;
      std::vector<Py_ssize_t> shape;
      return read_buffer(live, &format, &shape, &bytes) && format == detail_->format &&
             shape == detail_->shape && bytes == detail_->bytes;
    }
    default:
      return false;
  }
}
