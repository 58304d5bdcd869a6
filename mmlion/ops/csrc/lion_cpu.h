// The fused Lion step and the finiteness check for CPU tensors.
#pragma once
#include <torch/extension.h>

#include <vector>

// Updates params and exp_avgs in place. Returns false, having touched nothing,
// when some tensor is not one the kernel takes (the caller then takes another path).
bool fused_lion_(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
                 const std::vector<at::Tensor>& exp_avgs, double lr, double beta1, double beta2,
                 double decay, bool maximize, bool cautious);

// True when every element of every tensor is finite; None (touching nothing)
// when some tensor is not one the kernel takes.
py::object all_finite(const std::vector<at::Tensor>& tensors);
