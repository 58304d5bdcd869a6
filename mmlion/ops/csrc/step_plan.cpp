// StepPlan's per-step check (mmlion/optim/step_plan.py): the same param groups (by
// identity, with the same keys in the same order), holding the same parameters; each
// group's fixed hyperparameters equal, as values, to the frozen copies recorded; its
// scheduled ones (lr, initial_lr) equal to its bucket leader's, present or absent alike;
// the same momenta, each held by the same parameter, with the same dtype; the same
// parameters with gradients, all strided; and, for each parameter, gradient and momentum,
// the same answer to "does the CPU kernel take it?", on which the step's choice of
// implementation rests (mmlion/optim/implementation.py). One pass over borrowed references, where
// Python would make several passes and many objects.
#include "step_plan.h"

#include <algorithm>
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

// Whether a dict's key is ``name`` (a str): the same object, or an equal str.
bool same_key(PyObject* key, PyObject* name) {
  return key == name || (PyUnicode_CheckExact(key) && PyUnicode_Compare(key, name) == 0);
}

// A parameter's momentum, borrowed (nullptr where its state is not a dict or has none).
PyObject* exp_avg_of(PyObject* param_state, const py::str& key) {
  return PyDict_Check(param_state) ? PyDict_GetItem(param_state, key.ptr()) : nullptr;
}

int64_t dtype_of(PyObject* value) {
  // is_plain_tensor first: an exact type compare, where THPVariable_Check is an isinstance
  if (value == nullptr || !(is_plain_tensor(value) || THPVariable_Check(value))) return -1;
  return static_cast<int64_t>(THPVariable_Unpack(value).scalar_type());
}

}  // namespace

PlanCheck::PlanCheck(const py::list& groups, const py::dict& state,
                     const py::tuple& fixed_keys, const py::tuple& scheduled_keys,
                     std::vector<int64_t> leaders)
    : leaders_(std::move(leaders)), n_scheduled_(scheduled_keys.size()) {
  TORCH_CHECK(leaders_.size() == groups.size(), "PlanCheck: one leader per group");
  for (size_t g = 0; g < leaders_.size(); ++g) {
    TORCH_CHECK(leaders_[g] >= 0 && static_cast<size_t>(leaders_[g]) <= g,
                "PlanCheck: the leader of group ", g, " is ", leaders_[g],
                ", not an index of that group or an earlier one");
    slots_.push_back(leaders_[g] == static_cast<int64_t>(g) ? n_leaders_++ : -1);
  }
  for (const auto group : groups) {
    if (!PyDict_Check(group.ptr())) throw py::type_error("PlanCheck: a param group is not a dict");
    groups_.push_back(py::reinterpret_borrow<py::object>(group));
    PyObject* params = nullptr;
    Py_ssize_t position = 0, size = 0;
    PyObject *key, *value;
    while (PyDict_Next(group.ptr(), &position, &key, &value)) {
      Entry entry{py::reinterpret_borrow<py::object>(key), kOther, FrozenValue()};
      if (same_key(key, params_key_.ptr())) {
        entry.role = kParams;
        params = value;
      }
      for (size_t k = 0; k < n_scheduled_ && entry.role == kOther; ++k) {
        // (a scheduled value is frozen by each walk: one that does not freeze fails it)
        if (same_key(key, scheduled_keys[k].ptr())) entry.role = static_cast<int64_t>(k);
      }
      for (const auto fixed_key : fixed_keys) {
        if (entry.role == kOther && same_key(key, fixed_key.ptr())) {
          entry.role = kFixed;
          comparable_ = comparable_ && FrozenValue::freeze(value, &entry.value);
        }
      }
      entries_.push_back(std::move(entry));
      ++size;
    }
    sizes_.push_back(size);
    if (params == nullptr) throw py::key_error("PlanCheck: a param group has no params");
    if (!PyList_Check(params)) throw py::type_error("PlanCheck: a group's params is not a list");
    n_params_.push_back(PyList_GET_SIZE(params));
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(params); ++i) {
      PyObject* param = PyList_GET_ITEM(params, i);
      params_.push_back(py::reinterpret_borrow<py::object>(param));
      const py::object grad = grad_of(param);
      has_grad_.push_back(!grad.is_none());
      taken_.push_back(kernel_takes_object(param) + 2 * kernel_takes_object(grad.ptr()));
    }
  }
  Py_ssize_t position = 0;
  PyObject *owner, *param_state;
  while (PyDict_Next(state.ptr(), &position, &owner, &param_state)) {
    PyObject* exp_avg = exp_avg_of(param_state, exp_avg_key_);
    momenta_.push_back({py::reinterpret_borrow<py::object>(owner),
                        exp_avg == nullptr ? py::object()
                                           : py::reinterpret_borrow<py::object>(exp_avg),
                        dtype_of(exp_avg), kernel_takes_object(exp_avg)});
  }
}

// One walk over each group's entries (no hashing): the same keys in the same order, the
// same parameters, fixed values matching their frozen copies, scheduled ones matching
// their leader's, frozen as this walk finds them (a leader comes first).
bool PlanCheck::same_groups(const py::list& groups) const {
  if (static_cast<size_t>(PyList_GET_SIZE(groups.ptr())) != groups_.size()) return false;
  std::vector<FrozenValue> scheduled(n_leaders_ * n_scheduled_);  // each leader's
  std::vector<PyObject*> live(n_scheduled_);
  size_t e = 0, p = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    PyObject* group = PyList_GET_ITEM(groups.ptr(), g);
    if (group != groups_[g].ptr() || PyDict_Size(group) != sizes_[g]) return false;
    std::fill(live.begin(), live.end(), nullptr);
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
      } else if (entry.role == kFixed) {
        if (!entry.value.matches(value)) return false;
      } else if (entry.role >= 0) {
        live[entry.role] = value;
      }
    }
    const bool leads = static_cast<size_t>(leaders_[g]) == g;
    FrozenValue* leader = scheduled.data() + slots_[leaders_[g]] * n_scheduled_;
    for (size_t k = 0; k < n_scheduled_; ++k) {
      if (leads ? !FrozenValue::freeze(live[k], &leader[k]) : !leader[k].matches(live[k])) {
        return false;
      }
    }
  }
  return true;
}

bool PlanCheck::same_momenta(const py::dict& state) const {
  if (static_cast<size_t>(PyDict_Size(state.ptr())) != momenta_.size()) return false;
  Py_ssize_t position = 0;
  PyObject *owner, *param_state;
  for (const Momentum& momentum : momenta_) {
    if (!PyDict_Next(state.ptr(), &position, &owner, &param_state)) return false;
    if (owner != momentum.owner.ptr()) return false;
    PyObject* exp_avg = exp_avg_of(param_state, exp_avg_key_);
    if (exp_avg != momentum.exp_avg.ptr() || dtype_of(exp_avg) != momentum.dtype ||
        kernel_takes_object(exp_avg) != momentum.taken) {
      return false;
    }
  }
  return true;
}

py::object PlanCheck::gradients(const py::list& groups, const py::dict& state) const {
  if (!comparable_ || !same_groups(groups) || !same_momenta(state)) return py::none();
  py::list grads(params_.size());
  for (size_t p = 0; p < params_.size(); ++p) {
    py::object grad = grad_of(params_[p].ptr());
    const bool has = !grad.is_none();
    if (has != static_cast<bool>(has_grad_[p])) return py::none();  // came or went
    if (has && !(THPVariable_Check(grad.ptr()) &&
                 THPVariable_Unpack(grad.ptr()).layout() == at::kStrided)) {
      return py::none();  // sparse: the step's own loop names it
    }
    if (kernel_takes_object(params_[p].ptr()) + 2 * kernel_takes_object(grad.ptr()) !=
        taken_[p]) {
      return py::none();  // the choice of implementation may differ
    }
    PyList_SET_ITEM(grads.ptr(), p, grad.release().ptr());
  }
  return std::move(grads);
}
