// What a StepPlan (mmlion/optim/step_plan.py) checks each step, in one C++ pass.
#pragma once
#include <torch/extension.h>

#include <vector>

// The param groups, their parameters, their static hyperparameters and the optimizer's
// momenta as one step found them (held, so no new object can take an old one's
// address), and each step's check against them.
class PlanCheck {
 public:
  PlanCheck(const py::list& groups, const py::dict& state, const py::tuple& static_keys,
            const py::tuple& scheduled_keys, std::vector<int64_t> leaders);

  // Every parameter's gradient (None where it has none) when the plan still holds,
  // else None.
  py::object gradients(const py::list& groups, const py::dict& state) const;

 private:
  // A group's key, as recorded: what it holds, and for a static one, its value.
  struct Entry {
    py::object key;    // compared by identity: updating a value keeps its key object
    int64_t role;      // kParams, kStatic, kOther, or the index of a scheduled key
    py::object value;  // a static key's value
  };
  static constexpr int64_t kParams = -1, kStatic = -2, kOther = -3;

  bool same_groups(const py::list& groups) const;
  bool same_momenta(const py::dict& state) const;

  std::vector<py::object> groups_, params_, momenta_;
  std::vector<Entry> entries_;  // every group's keys, in each group's order
  std::vector<Py_ssize_t> sizes_, n_params_;
  std::vector<int64_t> leaders_;
  std::vector<char> has_grad_;
  size_t n_scheduled_ = 0;
  py::str params_key_{"params"}, exp_avg_key_{"exp_avg"};
};
