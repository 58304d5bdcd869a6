// StepPlan's per-step check (mmlion/optim/step_plan.py, whose Python twin decides the
// same, though it reads keys by name and so also takes a group whose keys were
// re-inserted in another order, which this check sends back to a new plan): the same
// param groups (by identity, with the same keys), holding the same parameters; each
// group's static hyperparameters equal to what they were; each group's scheduled ones
// (lr, initial_lr) numbers equal to its bucket leader's; the same momenta in the
// optimizer's state; the same parameters with gradients, all strided. One pass over
// borrowed references, where Python would make several passes and many objects.
#include "step_plan.h"

#include <utility>

#include "plain_tensor.h"

namespace {

// A parameter's .grad: read in C++ for plain tensors (no attribute lookup), through
// Python for subclasses, which may define it themselves.
py::object grad_of(PyObject* param) {
  if (is_plain_tensor(param)) {
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

// Whether a dict's key is ``name`` (a str): the same object, or an equal str.
bool same_key(PyObject* key, PyObject* name) {
  return key == name || (PyUnicode_CheckExact(key) && PyUnicode_Compare(key, name) == 0);
}

PyObject* item(PyObject* dict, const py::object& key) {
  return PyDict_Check(dict) ? PyDict_GetItem(dict, key.ptr()) : nullptr;  // borrowed
}

}  // namespace

PlanCheck::PlanCheck(const py::list& groups, const py::dict& state,
                     const py::tuple& static_keys, const py::tuple& scheduled_keys,
                     std::vector<int64_t> leaders)
    : leaders_(std::move(leaders)), n_scheduled_(scheduled_keys.size()) {
  TORCH_CHECK(leaders_.size() == groups.size(), "PlanCheck: one leader per group");
  for (size_t g = 0; g < leaders_.size(); ++g) {
    TORCH_CHECK(leaders_[g] >= 0 && static_cast<size_t>(leaders_[g]) <= g,
                "PlanCheck: the leader of group ", g, " is ", leaders_[g],
                ", not an index of that group or an earlier one");
  }
  for (const auto group : groups) {
    if (!PyDict_Check(group.ptr())) throw py::type_error("PlanCheck: a param group is not a dict");
    groups_.push_back(py::reinterpret_borrow<py::object>(group));
    PyObject* params = nullptr;
    size_t n_static = 0, n_scheduled = 0;
    Py_ssize_t position = 0, size = 0;
    PyObject *key, *value;
    while (PyDict_Next(group.ptr(), &position, &key, &value)) {
      int64_t role = kOther;
      if (same_key(key, params_key_.ptr())) {
        role = kParams;
        params = value;
      }
      for (size_t k = 0; k < n_scheduled_ && role == kOther; ++k) {
        if (same_key(key, scheduled_keys[k].ptr())) role = static_cast<int64_t>(k), ++n_scheduled;
      }
      for (const auto static_key : static_keys) {
        if (role == kOther && same_key(key, static_key.ptr())) role = kStatic, ++n_static;
      }
      entries_.push_back({py::reinterpret_borrow<py::object>(key), role,
                          role == kStatic ? py::reinterpret_borrow<py::object>(value)
                                          : py::object()});
      ++size;
    }
    sizes_.push_back(size);
    if (params == nullptr || n_static != static_keys.size() || n_scheduled != n_scheduled_) {
      throw py::key_error("PlanCheck: a param group lacks params or a hyperparameter");
    }
    if (!PyList_Check(params)) throw py::type_error("PlanCheck: a group's params is not a list");
    n_params_.push_back(PyList_GET_SIZE(params));
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(params); ++i) {
      PyObject* param = PyList_GET_ITEM(params, i);
      params_.push_back(py::reinterpret_borrow<py::object>(param));
      has_grad_.push_back(!grad_of(param).is_none());
    }
  }
  for (const auto entry : state) {
    PyObject* exp_avg = item(entry.second.ptr(), exp_avg_key_);
    momenta_.push_back(exp_avg == nullptr ? py::object()
                                          : py::reinterpret_borrow<py::object>(exp_avg));
  }
}

// One walk over each group's entries (no hashing): the same keys in the same order, the
// same parameters, static values equal to those recorded, scheduled ones numbers equal
// to their leader's.
bool PlanCheck::same_groups(const py::list& groups) const {
  if (static_cast<size_t>(PyList_GET_SIZE(groups.ptr())) != groups_.size()) return false;
  // each group's scheduled values, as this walk finds them (a leader comes first)
  std::vector<py::object> scheduled_now(groups_.size() * n_scheduled_);
  size_t e = 0, p = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    PyObject* group = PyList_GET_ITEM(groups.ptr(), g);
    if (group != groups_[g].ptr() || PyDict_Size(group) != sizes_[g]) return false;
    py::object* scheduled = scheduled_now.data() + g * n_scheduled_;
    const py::object* leader = scheduled_now.data() + leaders_[g] * n_scheduled_;
    Py_ssize_t position = 0;
    PyObject *key, *value;
    for (Py_ssize_t i = 0; i < sizes_[g]; ++i, ++e) {
      if (!PyDict_Next(group, &position, &key, &value)) return false;
      const Entry& entry = entries_[e];
      if (key != entry.key.ptr()) return false;
      if (entry.role == kParams) {
        if (!PyList_Check(value) || PyList_GET_SIZE(value) != n_params_[g]) return false;
        for (Py_ssize_t j = 0; j < n_params_[g]; ++j, ++p) {
          if (PyList_GET_ITEM(value, j) != params_[p].ptr()) return false;
        }
      } else if (entry.role == kStatic) {
        if (!equal(value, entry.value.ptr())) return false;
      } else if (entry.role >= 0) {
        if (!is_number(value)) return false;
        scheduled[entry.role] = py::reinterpret_borrow<py::object>(value);
        if (leader != scheduled && !equal(value, leader[entry.role].ptr())) return false;
      }
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
  if (!same_groups(groups) || !same_momenta(state)) return py::none();
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
