// Fused Lion step for CPU tensors (Chen et al. 2023, arXiv 2302.06675).
//
// One call updates a whole list of tensors: the list is cut into chunks of at
// most kChunk elements and the chunks are spread over the intra-op threads with
// at::parallel_for, so small tensors share a thread and large ones are split.
// Each element is read once (param, grad, exp_avg) and written once (param,
// exp_avg): 20 bytes per fp32 parameter, the least a Lion step can move.
// All arithmetic is in the op-math type (float for fp32/bf16/fp16, double for
// fp64) with one rounding when the param and exp_avg are stored.
#include "lion_cpu.h"

#include "plain_tensor.h"

#include <torch/extension.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
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

// Loads and stores in the op-math type. bf16 is converted with integer bit
// operations (round to nearest even, NaN kept NaN, as c10::BFloat16 does) so
// that the loops below vectorize; fp16 goes through c10::Half.
template <typename T, typename opmath_t>
struct Mem {
  static inline opmath_t load(const T* ptr, int64_t i) { return static_cast<opmath_t>(ptr[i]); }
  static inline void store(T* ptr, int64_t i, opmath_t v) { ptr[i] = static_cast<T>(v); }
};

// bf16 is read and written as its raw bits: the loop then sees plain uint16_t
// pointers, which GCC vectorizes well next to the fp32 ones (through c10::BFloat16
// pointers it did not, and bf16 state was slower than fp32 state).
template <typename T>
struct Bits {
  using type = T;
};
template <>
struct Bits<c10::BFloat16> {
  using type = uint16_t;
};

template <>
struct Mem<uint16_t, float> {
  static inline float load(const uint16_t* ptr, int64_t i) {
    const uint32_t bits = static_cast<uint32_t>(ptr[i]) << 16;
    float v;
    std::memcpy(&v, &bits, sizeof(v));
    return v;
  }
  static inline void store(uint16_t* ptr, int64_t i, float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof(bits));
    const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    ptr[i] = static_cast<uint16_t>(v != v ? 0x7FC0u : rounded);
  }
};

// bf16 state beside fp64 params: the raw bits go through float, as torch's
// double -> bf16 conversion does (round to float, then to bf16). Without this the
// generic Mem read the bits as an integer, and bf16 momentum stayed at zero.
template <>
struct Mem<uint16_t, double> {
  static inline double load(const uint16_t* ptr, int64_t i) {
    return static_cast<double>(Mem<uint16_t, float>::load(ptr, i));
  }
  static inline void store(uint16_t* ptr, int64_t i, double v) {
    Mem<uint16_t, float>::store(ptr, i, static_cast<float>(v));
  }
};

template <typename scalar_t, typename state_t, typename opmath_t, bool kMaximize, bool kCautious>
inline void lion_span_impl(scalar_t* __restrict__ p, const scalar_t* __restrict__ g,
                           state_t* __restrict__ m, int64_t n, const Hyper& h,
                           opmath_t caution_scale) {
  using P = Mem<scalar_t, opmath_t>;
  using S = Mem<state_t, opmath_t>;
  const opmath_t decay = h.decay;
  const opmath_t neg_lr = -h.lr;
  const opmath_t b1 = h.beta1, omb1 = 1.0 - h.beta1;
  const opmath_t b2 = h.beta2, omb2 = 1.0 - h.beta2;
#pragma GCC ivdep
  for (int64_t i = 0; i < n; ++i) {
    opmath_t gi = P::load(g, i);
    if (kMaximize) gi = -gi;
    const opmath_t mi = S::load(m, i);
    // weight decay
    opmath_t pi = P::load(p, i) * decay;
    // weight update
    opmath_t u = sign_of<opmath_t>(mi * b1 + gi * omb1);
    if (kCautious) u = (u * gi > opmath_t(0)) ? u * caution_scale : opmath_t(0);
    pi = pi + neg_lr * u;
    P::store(p, i, pi);
    // decay the momentum running average coefficient
    S::store(m, i, mi * b2 + gi * omb2);
  }
}

// Compiled for AVX-512, AVX2 and baseline x86-64 and picked at load time, so one
// build is fast on the machine it runs on and still runs on older ones. It is
// compiled with -ffp-contract=off: without that GCC fuses multiply-adds in the
// AVX-512 clone only, and the same step gave other bits on other machines.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MMLION_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MMLION_CLONES
#endif

template <typename scalar_t, typename state_t, typename opmath_t, bool kMaximize, bool kCautious>
MMLION_CLONES void lion_span(scalar_t* p, const scalar_t* g, state_t* m, int64_t n,
                             const Hyper& h, opmath_t caution_scale) {
  using P = typename Bits<scalar_t>::type;
  using S = typename Bits<state_t>::type;
  lion_span_impl<P, S, opmath_t, kMaximize, kCautious>(
      reinterpret_cast<P*>(p), reinterpret_cast<const P*>(g), reinterpret_cast<S*>(m), n, h,
      caution_scale);
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

// One tensor's kernels, bound to its (param dtype, state dtype) pair, so that a
// single call can update lists that mix dtypes.
struct TensorOps {
  void (*span)(void* p, const void* g, void* m, int64_t begin, int64_t n, const Hyper& h,
               bool cautious, double caution_scale);
  int64_t (*count)(const void* g, const void* m, int64_t begin, int64_t n, const Hyper& h);
};

template <typename scalar_t, typename state_t>
struct TypedOps {
  using opmath_t = at::opmath_type<scalar_t>;
  static void span(void* p, const void* g, void* m, int64_t begin, int64_t n, const Hyper& h,
                   bool cautious, double caution_scale) {
    lion_span_dispatch<scalar_t, state_t, opmath_t>(
        static_cast<scalar_t*>(p) + begin, static_cast<const scalar_t*>(g) + begin,
        static_cast<state_t*>(m) + begin, n, h, cautious, caution_scale);
  }
  static int64_t count(const void* g, const void* m, int64_t begin, int64_t n, const Hyper& h) {
    return count_agree<scalar_t, state_t, opmath_t>(static_cast<const scalar_t*>(g) + begin,
                                                   static_cast<const state_t*>(m) + begin, n, h);
  }
  static constexpr TensorOps ops{&span, &count};
};

template <typename scalar_t>
TensorOps ops_for_state(at::ScalarType state_dtype) {
  switch (state_dtype) {
    case at::kFloat: return TypedOps<scalar_t, float>::ops;
    case at::kDouble: return TypedOps<scalar_t, double>::ops;
    case at::kBFloat16: return TypedOps<scalar_t, c10::BFloat16>::ops;
    case at::kHalf: return TypedOps<scalar_t, c10::Half>::ops;
    default: TORCH_CHECK(false, "fused_lion_: unsupported exp_avg dtype ", state_dtype);
  }
}

TensorOps ops_for(at::ScalarType dtype, at::ScalarType state_dtype) {
  switch (dtype) {
    case at::kFloat: return ops_for_state<float>(state_dtype);
    case at::kDouble: return ops_for_state<double>(state_dtype);
    case at::kBFloat16: return ops_for_state<c10::BFloat16>(state_dtype);
    case at::kHalf: return ops_for_state<c10::Half>(state_dtype);
    default: TORCH_CHECK(false, "fused_lion_: unsupported param dtype ", dtype);
  }
}

struct Chunk {
  int64_t tensor, begin, end;
};

// A tensor as the kernel sees it: real and dense. Complex tensors are viewed as
// real; tensors whose layouts differ are worked on in contiguous copies that are
// written back afterwards (rare: autograd gives grads the param's layout).
struct Operand {
  at::Tensor p, g, m;            // what the kernel reads and writes
  at::Tensor p_orig, m_orig;     // where to copy back, when p or m is a copy
  TensorOps ops;
};

Operand make_operand(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                     size_t i) {
  at::Tensor p = param, g = grad, m = exp_avg;
  if (p.is_complex()) p = at::view_as_real(p);
  if (g.is_complex()) g = at::view_as_real(g);
  if (m.is_complex()) m = at::view_as_real(m);
  TORCH_CHECK(!g.is_sparse(), "fused_lion_: grad ", i, " is sparse");
  TORCH_CHECK(p.scalar_type() == g.scalar_type(),
              "fused_lion_: params and grads must share one dtype; tensor ", i, " has param ",
              param.scalar_type(), " and grad ", grad.scalar_type());
  TORCH_CHECK(p.numel() == g.numel() && p.numel() == m.numel(), "fused_lion_: tensor ", i,
              " has param, grad and exp_avg of different sizes");
  Operand op{p, g, m, at::Tensor(), at::Tensor(), ops_for(p.scalar_type(), m.scalar_type())};
  // Elementwise work can walk raw memory whenever the three share one dense layout
  // (channels_last included); otherwise it works on contiguous copies.
  const bool shared_dense_layout = p.is_non_overlapping_and_dense() &&
                                   g.strides().equals(p.strides()) &&
                                   m.strides().equals(p.strides());
  if (!shared_dense_layout) {
    if (!p.is_contiguous()) {
      op.p_orig = p;
      op.p = p.contiguous();
    }
    if (!m.is_contiguous()) {
      op.m_orig = m;
      op.m = m.contiguous();
    }
    op.g = g.contiguous();
  }
  return op;
}

// Finiteness by bit pattern: an IEEE value is Inf or NaN exactly when its
// exponent bits are all ones. Integer ops vectorize for every float width and
// read each element once, without converting it.
template <typename bits_t>
MMLION_CLONES bool span_has_nonfinite(const bits_t* x, int64_t n, bits_t exponent) {
  bits_t bad = 0;
  for (int64_t i = 0; i < n; ++i) bad |= static_cast<bits_t>((x[i] & exponent) == exponent);
  return bad != 0;
}

bool chunk_has_nonfinite(const at::Tensor& t, int64_t begin, int64_t end) {
  const int64_t n = end - begin;
  switch (t.scalar_type()) {
    case at::kFloat:
      return span_has_nonfinite<uint32_t>(
          static_cast<const uint32_t*>(t.const_data_ptr()) + begin, n, 0x7F800000u);
    case at::kDouble:
      return span_has_nonfinite<uint64_t>(
          static_cast<const uint64_t*>(t.const_data_ptr()) + begin, n, 0x7FF0000000000000ull);
    case at::kHalf:
      return span_has_nonfinite<uint16_t>(
          static_cast<const uint16_t*>(t.const_data_ptr()) + begin, n, 0x7C00u);
    case at::kBFloat16:
      return span_has_nonfinite<uint16_t>(
          static_cast<const uint16_t*>(t.const_data_ptr()) + begin, n, 0x7F80u);
    default:
      return false;  // integer and bool tensors are always finite
  }
}

}  // namespace

// Updates params and exp_avgs in place. Returns false, having touched nothing,
// when some tensor is not one the kernel takes (the caller then takes another path).
bool fused_lion_(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
                 const std::vector<at::Tensor>& exp_avgs, double lr, double beta1, double beta2,
                 double decay, bool maximize, bool cautious) {
  TORCH_CHECK(params.size() == grads.size() && params.size() == exp_avgs.size(),
              "fused_lion_: params, grads and exp_avgs must have the same length, got ",
              params.size(), ", ", grads.size(), " and ", exp_avgs.size());
  const int64_t ntensors = static_cast<int64_t>(params.size());
  for (int64_t t = 0; t < ntensors; ++t) {
    if (!kernel_takes(params[t]) || !kernel_takes(grads[t]) || !kernel_takes(exp_avgs[t])) return false;
  }
  // All checks happen here, before the first write.
  std::vector<Operand> operands;
  operands.reserve(ntensors);
  std::vector<Chunk> chunks;
  chunks.reserve(ntensors);
  for (int64_t t = 0; t < ntensors; ++t) {
    operands.push_back(make_operand(params[t], grads[t], exp_avgs[t], t));
    const int64_t n = operands.back().p.numel();
    for (int64_t b = 0; b < n; b += kChunk) chunks.push_back({t, b, std::min(n, b + kChunk)});
  }
  const int64_t nchunks = static_cast<int64_t>(chunks.size());
  if (nchunks == 0) return true;
  std::vector<void*> pp(ntensors), mp(ntensors);
  std::vector<const void*> gp(ntensors);
  for (int64_t t = 0; t < ntensors; ++t) {
    pp[t] = operands[t].p.data_ptr();
    gp[t] = operands[t].g.const_data_ptr();
    mp[t] = operands[t].m.data_ptr();
  }
  const Hyper h{lr, beta1, beta2, decay, maximize};

  std::vector<double> scale(ntensors, 1.0);
  if (cautious) {
    // timm's rule: scale the kept updates by 1 / max(mean(mask), 1e-3).
    std::vector<int64_t> agree(nchunks, 0);
    at::parallel_for(0, nchunks, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t c = lo; c < hi; ++c) {
        const Chunk& k = chunks[c];
        agree[c] = operands[k.tensor].ops.count(gp[k.tensor], mp[k.tensor], k.begin,
                                                k.end - k.begin, h);
      }
    });
    std::vector<int64_t> per_tensor(ntensors, 0);
    for (int64_t c = 0; c < nchunks; ++c) per_tensor[chunks[c].tensor] += agree[c];
    for (int64_t t = 0; t < ntensors; ++t) {
      const double n = static_cast<double>(operands[t].p.numel());
      if (n > 0) scale[t] = 1.0 / std::max(static_cast<double>(per_tensor[t]) / n, 1e-3);
    }
  }

  at::parallel_for(0, nchunks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      const Chunk& k = chunks[c];
      operands[k.tensor].ops.span(pp[k.tensor], gp[k.tensor], mp[k.tensor], k.begin,
                                  k.end - k.begin, h, cautious, scale[k.tensor]);
    }
  });
  for (auto& op : operands) {
    if (op.p_orig.defined()) op.p_orig.copy_(op.p);
    if (op.m_orig.defined()) op.m_orig.copy_(op.m);
  }
  return true;
}

// True when every element of every tensor is finite; None (touching nothing)
// when some tensor is not one the kernel takes. Read-only, one pass, split like the step.
py::object all_finite(const std::vector<at::Tensor>& tensors) {
  for (const auto& t : tensors) {
    if (!kernel_takes(t)) return py::none();
  }
  std::vector<at::Tensor> dense;
  dense.reserve(tensors.size());
  std::vector<Chunk> chunks;
  for (const auto& tensor : tensors) {
    at::Tensor t = tensor.is_complex() ? at::view_as_real(tensor) : tensor;
    if (!t.is_non_overlapping_and_dense()) t = t.contiguous();
    const int64_t n = t.numel(), index = static_cast<int64_t>(dense.size());
    dense.push_back(t);
    for (int64_t b = 0; b < n; b += kChunk) chunks.push_back({index, b, std::min(n, b + kChunk)});
  }
  std::atomic<bool> found{false};
  {
    py::gil_scoped_release no_gil;
    at::parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t lo, int64_t hi) {
      for (int64_t c = lo; c < hi && !found.load(std::memory_order_relaxed); ++c) {
        const Chunk& k = chunks[c];
        if (chunk_has_nonfinite(dense[k.tensor], k.begin, k.end)) {
          found.store(true, std::memory_order_relaxed);
        }
      }
    });
  }
  return py::bool_(!found.load());
}
