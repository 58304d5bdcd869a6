// StepPlan's per-step check (mmlion/optim/step_plan.py, whose Python twin decides the
// same): the same param groups (by identity, with as many keys), holding the same
// parameters; each group's static hyperparameters equal to what they were; each group's
// scheduled ones (lr, initial_lr) numbers equal to its bucket leader's; the same momenta
// in the optimizer's state; the same parameters with gradients, all strided. One pass
// over borrowed references, where Python would make several passes and many objects.
#include "step_plan.h"

#include <utility>

namespace {

bool plain(PyObject* item) {
  const PyObject* type = reinterpret_cast<PyObject*>(Py_TYPE(item));
  return type == THPVariableClass || type == ParameterClass;
}

// A parameter's .grad: read in C++ for plain tensors (no attribute lookup), through
// Python for subclasses, which may define it themselves.
py::object grad_of(PyObject* param) {
  if (plain(param)) {
    const at::Tensor& grad = THPVariable_Unpack(param).grad();
    if (!grad.defined()) return py::none();
    return py::reinterpret_steal<py::object>(THPVariable_Wrap(grad));
  }
  return py::reinterpret_borrow<py::object>(param).attr("grad");
}

bool is_number(PyObject* value) {
  return value != nullptr && (PyFloat_Check(value) || PyLong_Check(value));
}

// a == b by Python's ==; false (and no error left set) where == raises. Both are held
// for the comparison, which may run Python code.
bool equal(PyObject* a, PyObject* b) {
  if (a == b) return true;
  if (a == nullptr || b == nullptr) return false;
  const py::object held_a = py::reinterpret_borrow<py::object>(a);
  const py::object held_b = py::reinterpret_borrow<py::object>(b);
  const int result = PyObject_RichCompareBool(a, b, Py_EQ);
  if (result < 0) {
    PyErr_Clear();
    return false;
  }
  return result == 1;
}

PyObject* item(PyObject* dict, const py::object& key) {
  return PyDict_Check(dict) ? PyDict_GetItem(dict, key.ptr()) : nullptr;  // borrowed
}

}  // namespace

PlanCheck::PlanCheck(const py::list& groups, const py::dict& state,
                     const py::tuple& static_keys, const py::tuple& scheduled_keys,
                     std::vector<int64_t> leaders)
    : leaders_(std::move(leaders)) {
  TORCH_CHECK(leaders_.size() == groups.size(), "PlanCheck: one leader per group");
  for (const int64_t leader : leaders_) {
    TORCH_CHECK(leader >= 0 && static_cast<size_t>(leader) < groups.size(),
                "PlanCheck: leader ", leader, " is not a group index");
  }
  for (const auto key : static_keys) static_keys_.push_back(py::reinterpret_borrow<py::object>(key));
  for (const auto key : scheduled_keys) {
    scheduled_keys_.push_back(py::reinterpret_borrow<py::object>(key));
  }
  for (const auto group : groups) {
    if (!PyDict_Check(group.ptr())) throw py::type_error("PlanCheck: a param group is not a dict");
    groups_.push_back(py::reinterpret_borrow<py::object>(group));
    sizes_.push_back(PyDict_Size(group.ptr()));
    const py::list params = group[params_key_];
    n_params_.push_back(static_cast<Py_ssize_t>(params.size()));
    for (const auto param : params) {
      params_.push_back(py::reinterpret_borrow<py::object>(param));
      has_grad_.push_back(!grad_of(param.ptr()).is_none());
    }
    for (const auto& key : static_keys_) static_values_.push_back(group[key]);
  }
  for (const auto entry : state) {
    PyObject* exp_avg = item(entry.second.ptr(), exp_avg_key_);
    momenta_.push_back(exp_avg == nullptr ? py::object() : py::reinterpret_borrow<py::object>(exp_avg));
  }
}

bool PlanCheck::same_groups(const py::list& groups) const {
  if (static_cast<size_t>(PyList_GET_SIZE(groups.ptr())) != groups_.size()) return false;
  size_t p = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    PyObject* group = PyList_GET_ITEM(groups.ptr(), g);
    if (group != groups_[g].ptr() || PyDict_Size(group) != sizes_[g]) return false;
    PyObject* params = item(group, params_key_);
    if (params == nullptr || !PyList_Check(params) || PyList_GET_SIZE(params) != n_params_[g]) {
      return false;
    }
    for (Py_ssize_t i = 0; i < n_params_[g]; ++i, ++p) {
      if (PyList_GET_ITEM(params, i) != params_[p].ptr()) return false;
    }
  }
  return true;
}

bool PlanCheck::same_hyperparameters(const py::list& groups) const {
  const size_t n_static = static_keys_.size();
  for (size_t g = 0; g < groups_.size(); ++g) {
    PyObject* group = groups_[g].ptr();
    for (size_t k = 0; k < n_static; ++k) {
      PyObject* value = item(group, static_keys_[k]);
      if (value == nullptr || !equal(value, static_values_[g * n_static + k].ptr())) return false;
    }
    PyObject* leader = groups_[leaders_[g]].ptr();
    for (const auto& key : scheduled_keys_) {
      PyObject* value = item(group, key);
      if (!is_number(value)) return false;
      if (leader != group && !equal(value, item(leader, key))) return false;
    }
  }
  return true;
}

bool PlanCheck::same_momenta(const py::dict& state) const {
  if (static_cast<size_t>(PyDict_Size(state.ptr())) != momenta_.size()) return false;
  Py_ssize_t position = 0;
  PyObject *key, *value;
  size_t m = 0;
  while (PyDict_Next(state.ptr(), &position, &key, &value)) {
    if (item(value, exp_avg_key_) != momenta_[m++].ptr()) return false;
  }
  return true;
}

py::object PlanCheck::gradients(const py::list& groups, const py::dict& state) const {
  if (!same_groups(groups) || !same_hyperparameters(groups) || !same_momenta(state)) {
    return py::none();
  }
  py::list grads(params_.size());
  for (size_t p = 0; p < params_.size(); ++p) {
    py::object grad = grad_of(params_[p].ptr());
    const bool has = !grad.is_none();
    if (has != static_cast<bool>(has_grad_[p])) return py::none();  // came or went
    if (has && !(THPVariable_Check(grad.ptr()) &&
                 THPVariable_Unpack(grad.ptr()).layout() == at::kStrided)) {
      return py::none();  // sparse: the step's own loop names it
    }
    PyList_SET_ITEM(grads.ptr(), p, grad.release().ptr());
  }
  return std::move(grads);
}
