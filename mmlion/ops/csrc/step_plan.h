// What a StepPlan (mmlion/optim/step_plan.py) holds, and the check each step makes
// against it, in one C++ pass.
#pragma once
#include <torch/extension.h>

#include <vector>

#include "frozen_value.h"

// The param groups, their parameters, the hyperparameters the step reads (as values:
// frozen copies) and the optimizer's momenta as one step found them. Objects compared
// by identity are held, so no new object can take an old one's address.
class PlanCheck {
 public:
  // ``fixed_keys``: hyperparameters that must keep their recorded values;
  // ``scheduled_keys``: those a scheduler changes, which must equal the group's leader's
  // (``leaders[g]``, an index <= g) each step.
  PlanCheck(const py::list& groups, const py::dict& state, const py::tuple& fixed_keys,
            const py::tuple& scheduled_keys, std::vector<int64_t> leaders);

  // Every parameter's gradient (None where it has none) when the plan still holds,
  // else None (always None when some value the step reads did not freeze).
  py::object gradients(const py::list& groups, const py::dict& state) const;

 private:
  // A group's key, as recorded: what it holds, and for a fixed one, its value.
  struct Entry {
    py::object key;     // compared by identity: updating a value keeps its key object
    int64_t role;       // kParams, kFixed, kOther, or the index of a scheduled key
    FrozenValue value;  // a fixed key's value
  };
  // A parameter's state, as recorded: whose it is, its momentum and that one's dtype.
  struct Momentum {
    py::object owner, exp_avg;
    int64_t dtype;  // -1 where exp_avg is not a Tensor
    bool taken;     // the CPU kernel takes exp_avg
  };
  static constexpr int64_t kParams = -1, kFixed = -2, kOther = -3;

  bool same_groups(const py::list& groups) const;
  bool same_momenta(const py::dict& state) const;

  bool comparable_ = true;  // every fixed value froze (each walk freezes the scheduled ones)
  std::vector<py::object> groups_, params_;
  std::vector<Entry> entries_;  // every group's keys, in each group's order
  std::vector<Momentum> momenta_;
  std::vector<Py_ssize_t> sizes_, n_params_;
  std::vector<int64_t> leaders_;
  std::vector<int64_t> slots_;  // a leader's place among the leaders (-1: not a leader)
  int64_t n_leaders_ = 0;
  std::vector<char> has_grad_;
  std::vector<char> taken_;  // per parameter: 1 the CPU kernel takes it, + 2 its gradient
  size_t n_scheduled_ = 0;
  py::str params_key_{"params"}, exp_avg_key_{"exp_avg"};
};
