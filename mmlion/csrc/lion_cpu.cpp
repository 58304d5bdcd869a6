// Fused Lion step for CPU tensors (Chen et al. 2023, arXiv 2302.06675).
//
// One call updates a whole list of tensors: the list is cut into chunks of at
// most kChunk elements and the chunks are spread over the intra-op threads with
// at::parallel_for, so small tensors share a thread and large ones are split.
// Each element is read once (param, grad, exp_avg) and written once (param,
// exp_avg): 20 bytes per fp32 parameter, the least a Lion step can move.
// All arithmetic is in the op-math type (float for fp32/bf16/fp16, double for
// fp64) with one rounding when the param and exp_avg are stored.
#include <torch/extension.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

constexpr int64_t kChunk = 1 << 15;

template <typename T>
inline T sign_of(T x) {
  // torch.sign's CPU semantics: +-1, and 0 for zeros and NaN. Branch-free so the
  // loop vectorizes.
  return static_cast<T>(x > T(0)) - static_cast<T>(x < T(0));
}

struct Hyper {
  double lr, beta1, beta2, decay;  // decay: the factor 1 - lr * wd
  bool maximize;
};

// Cautious masking needs, per tensor, the share of elements whose update agrees
// with the gradient. This pass counts them.
template <typename scalar_t, typename state_t, typename opmath_t>
int64_t count_agree(const scalar_t* g, const state_t* m, int64_t n, const Hyper& h) {
  const opmath_t b1 = h.beta1, omb1 = 1.0 - h.beta1;
  int64_t agree = 0;
  for (int64_t i = 0; i < n; ++i) {
    opmath_t gi = static_cast<opmath_t>(g[i]);
    if (h.maximize) gi = -gi;
    const opmath_t u = sign_of<opmath_t>(static_cast<opmath_t>(m[i]) * b1 + gi * omb1);
    agree += (u * gi > opmath_t(0));
  }
  return agree;
}

template <typename scalar_t, typename state_t, typename opmath_t, bool kMaximize, bool kCautious>
void lion_span(scalar_t* __restrict__ p, const scalar_t* __restrict__ g,
               state_t* __restrict__ m, int64_t n, const Hyper& h, opmath_t caution_scale) {
  const opmath_t decay = h.decay;
  const opmath_t neg_lr = -h.lr;
  const opmath_t b1 = h.beta1, omb1 = 1.0 - h.beta1;
  const opmath_t b2 = h.beta2, omb2 = 1.0 - h.beta2;
  for (int64_t i = 0; i < n; ++i) {
    opmath_t gi = static_cast<opmath_t>(g[i]);
    if (kMaximize) gi = -gi;
    const opmath_t mi = static_cast<opmath_t>(m[i]);
    // weight decay
    opmath_t pi = static_cast<opmath_t>(p[i]) * decay;
    // weight update
    opmath_t u = sign_of<opmath_t>(mi * b1 + gi * omb1);
    if (kCautious) u = (u * gi > opmath_t(0)) ? u * caution_scale : opmath_t(0);
    pi = pi + neg_lr * u;
    p[i] = static_cast<scalar_t>(pi);
    // decay the momentum running average coefficient
    m[i] = static_cast<state_t>(mi * b2 + gi * omb2);
  }
}

template <typename scalar_t, typename state_t, typename opmath_t>
void lion_span_dispatch(scalar_t* p, const scalar_t* g, state_t* m, int64_t n,
                        const Hyper& h, bool cautious, double caution_scale) {
  const opmath_t cs = static_cast<opmath_t>(caution_scale);
  if (h.maximize) {
    if (cautious) lion_span<scalar_t, state_t, opmath_t, true, true>(p, g, m, n, h, cs);
    else lion_span<scalar_t, state_t, opmath_t, true, false>(p, g, m, n, h, cs);
  } else {
    if (cautious) lion_span<scalar_t, state_t, opmath_t, false, true>(p, g, m, n, h, cs);
    else lion_span<scalar_t, state_t, opmath_t, false, false>(p, g, m, n, h, cs);
  }
}

struct Chunk {
  int64_t tensor, begin, end;
};

template <typename scalar_t, typename state_t>
void fused_lion_typed(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
                      const std::vector<at::Tensor>& exp_avgs, const Hyper& h, bool cautious) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t ntensors = static_cast<int64_t>(params.size());
  std::vector<scalar_t*> pp(ntensors);
  std::vector<const scalar_t*> gp(ntensors);
  std::vector<state_t*> mp(ntensors);
  std::vector<Chunk> chunks;
  chunks.reserve(ntensors);
  for (int64_t t = 0; t < ntensors; ++t) {
    pp[t] = params[t].data_ptr<scalar_t>();
    gp[t] = grads[t].const_data_ptr<scalar_t>();
    mp[t] = exp_avgs[t].data_ptr<state_t>();
    const int64_t n = params[t].numel();
    for (int64_t b = 0; b < n; b += kChunk) chunks.push_back({t, b, std::min(n, b + kChunk)});
  }
  const int64_t nchunks = static_cast<int64_t>(chunks.size());
  if (nchunks == 0) return;

  std::vector<double> scale(ntensors, 1.0);
  if (cautious) {
    // timm's rule: scale kept updates by 1 / max(mean(mask), 1e-3).
    std::vector<int64_t> agree(nchunks, 0);
    at::parallel_for(0, nchunks, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t c = lo; c < hi; ++c) {
        const Chunk& k = chunks[c];
        agree[c] = count_agree<scalar_t, state_t, opmath_t>(
            gp[k.tensor] + k.begin, mp[k.tensor] + k.begin, k.end - k.begin, h);
      }
    });
    std::vector<int64_t> per_tensor(ntensors, 0);
    for (int64_t c = 0; c < nchunks; ++c) per_tensor[chunks[c].tensor] += agree[c];
    for (int64_t t = 0; t < ntensors; ++t) {
      const double n = static_cast<double>(params[t].numel());
      if (n > 0) scale[t] = 1.0 / std::max(static_cast<double>(per_tensor[t]) / n, 1e-3);
    }
  }

  at::parallel_for(0, nchunks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      const Chunk& k = chunks[c];
      lion_span_dispatch<scalar_t, state_t, opmath_t>(
          pp[k.tensor] + k.begin, gp[k.tensor] + k.begin, mp[k.tensor] + k.begin,
          k.end - k.begin, h, cautious, scale[k.tensor]);
    }
  });
}

void check_inputs(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
                  const std::vector<at::Tensor>& exp_avgs) {
  TORCH_CHECK(params.size() == grads.size() && params.size() == exp_avgs.size(),
              "fused_lion_: params, grads and exp_avgs must have the same length, got ",
              params.size(), ", ", grads.size(), " and ", exp_avgs.size());
  if (params.empty()) return;
  const auto dtype = params[0].scalar_type();
  const auto state_dtype = exp_avgs[0].scalar_type();
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    const auto& g = grads[i];
    const auto& m = exp_avgs[i];
    TORCH_CHECK(p.device().is_cpu() && g.device().is_cpu() && m.device().is_cpu(),
                "fused_lion_: tensor ", i, " is not on the CPU");
    TORCH_CHECK(p.scalar_type() == dtype && g.scalar_type() == dtype,
                "fused_lion_: params and grads must share one dtype; tensor ", i, " has param ",
                p.scalar_type(), " and grad ", g.scalar_type(), ", expected ", dtype);
    TORCH_CHECK(m.scalar_type() == state_dtype, "fused_lion_: exp_avg ", i, " has dtype ",
                m.scalar_type(), ", expected ", state_dtype);
    TORCH_CHECK(p.numel() == g.numel() && p.numel() == m.numel(), "fused_lion_: tensor ", i,
                " has param, grad and exp_avg of different sizes");
    TORCH_CHECK(p.is_contiguous() && g.is_contiguous() && m.is_contiguous(),
                "fused_lion_: tensor ", i, " is not contiguous");
    TORCH_CHECK(!g.is_sparse(), "fused_lion_: grad ", i, " is sparse");
  }
}

}  // namespace

void fused_lion_(std::vector<at::Tensor> params, std::vector<at::Tensor> grads,
                 std::vector<at::Tensor> exp_avgs, double lr, double beta1, double beta2,
                 double decay, bool maximize, bool cautious) {
  check_inputs(params, grads, exp_avgs);
  if (params.empty()) return;
  const Hyper h{lr, beta1, beta2, decay, maximize};
  const auto dtype = params[0].scalar_type();
  const auto state_dtype = exp_avgs[0].scalar_type();

#define MMLION_STATE_CASES(scalar_t)                                                       \
  switch (state_dtype) {                                                                  \
    case at::kFloat: return fused_lion_typed<scalar_t, float>(params, grads, exp_avgs, h, cautious); \
    case at::kDouble: return fused_lion_typed<scalar_t, double>(params, grads, exp_avgs, h, cautious); \
    case at::kBFloat16: return fused_lion_typed<scalar_t, c10::BFloat16>(params, grads, exp_avgs, h, cautious); \
    case at::kHalf: return fused_lion_typed<scalar_t, c10::Half>(params, grads, exp_avgs, h, cautious); \
    default: TORCH_CHECK(false, "fused_lion_: unsupported exp_avg dtype ", state_dtype);   \
  }

  switch (dtype) {
    case at::kFloat: MMLION_STATE_CASES(float)
    case at::kDouble: MMLION_STATE_CASES(double)
    case at::kBFloat16: MMLION_STATE_CASES(c10::BFloat16)
    case at::kHalf: MMLION_STATE_CASES(c10::Half)
    default: TORCH_CHECK(false, "fused_lion_: unsupported param dtype ", dtype);
  }
#undef MMLION_STATE_CASES
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "mmlion's fused Lion kernels";
  m.def("fused_lion_", &fused_lion_, "Fused in-place Lion step over lists of CPU tensors",
        py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("lr"),
        py::arg("beta1"), py::arg("beta2"), py::arg("decay"), py::arg("maximize"),
        py::arg("cautious"));
}
