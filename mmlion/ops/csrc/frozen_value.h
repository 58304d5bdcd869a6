// A deep copy of a plain Python value, and whether a live value still equals it: what a
// StepPlan (step_plan.cpp) holds of each hyperparameter it reads.
#pragma once
#include <torch/extension.h>

#include <memory>

// A value compared as a value, never by identity: a list mutated in place (betas[1] =
// 0.5) no longer matches its copy. What freezes:
//   * atoms, compared by exact type and ==: None, bool, int, float, str, bytes,
//     torch.dtype, torch.device;
//   * lists and tuples (exact types) of what freezes, compared item by item;
//   * anything that exposes a buffer (numpy scalars and arrays), compared by exact type,
//     item format, shape and bytes.
// Anything else (a Tensor, a dict, an object of unknown type) does not freeze: the plan
// cannot vouch for it, so there is no plan.
class FrozenValue {
 public:
  // False, leaving ``out`` unspecified, when ``value`` does not freeze.
  static bool freeze(PyObject* value, FrozenValue* out, int depth = 0);
  // Inline for the common case, the very object frozen when it cannot change (an atom, a
  // tuple of atoms): thousands of groups times a dozen keys each step.
  bool matches(PyObject* live, int depth = 0) const {
    return (live != nullptr && live == immutable_.ptr()) || compare(live, depth);
  }

 private:
  enum Kind { kAbsent, kAtom, kSequence, kBuffer };
  struct Detail;  // what a sequence or a buffer holds: out of line, so that the common
                  // atom stays small and thousands of them stay in the cache
  bool compare(PyObject* live, int depth) const;

  Kind kind_ = kAbsent;
  py::object immutable_;  // the value itself, where it cannot change: equal by identity
  py::object object_;     // kAtom: the value itself (immutable); else its exact type
  std::unique_ptr<Detail> detail_;  // kSequence, kBuffer

 public:
  FrozenValue();
  FrozenValue(FrozenValue&&) noexcept;
  FrozenValue& operator=(FrozenValue&&) noexcept;
  ~FrozenValue();
};
