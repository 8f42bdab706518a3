// Linear layers: fp32 through cuBLAS (cublasSgemm, no TF32: see cuda_context.cu), and bf16
// operands with fp32 accumulation and results through cuBLASLt (the BF16 mode: kernels.h).
//
// Checked against CUDA 13.0's cublasLt.h comments: attribute types (TRANSA/B, BIAS_DATA_TYPE
// int32_t; EPILOGUE uint32_t; BIAS_POINTER a device pointer; PREF_MAX_WORKSPACE_BYTES uint64_t,
// default 0 = none; MIN_ALIGNMENT_*_BYTES uint32_t, default 256), EPILOGUE_BIAS (packed, length
// rows(D), bias type defaults to D's: fp32), and that the heuristic reads the bias pointer's
// alignment. From the cuBLAS guide (not re-read here): layouts describe matrices as stored, before
// TRANSA/B; in place (C == D) needs identical layouts; workspace 32 MiB on Hopper, 4 MiB before.
//
// cuBLAS is column-major. A row-major (R, C) matrix is, in the same memory, the column-major
// (C, R) matrix of its transpose, so each row-major product X = A B is computed as the
// column-major product X^T = B^T A^T, with every "transposed" operand being the buffer as is.
#include <cstdint>
#include <map>
#include <stdexcept>
#include <tuple>

#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/grid.h"
#include "kernels/cuda/kernels.h"

namespace dgqa::cuda {

namespace {

constexpr int kThreads = 256;

// out (N, OC): every row a copy of bias (OC). One thread per element, grid-stride.
__global__ void broadcast_rows_kernel(float* out, const float* bias, int64_t N, int OC) {
  const int64_t total = N * OC;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = bias[i % OC];
  }
}

// x[i] = 1 for i < n. One thread per element, grid-stride.
__global__ void fill_ones_kernel(float* x, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    x[i] = 1.f;
  }
}

// A device vector of at least n ones (dbias = dout^T ones is a gemv). Kept between calls and
// grown when a call needs more; it lives as long as the process, like the context.
const float* device_ones(int n) {
  static float* ones = nullptr;
  static int length = 0;
  if (n > length) {
    CudaContext& ctx = context();
    DGQA_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));  // no queued gemv still reads the old one
    DGQA_CUDA_CHECK(cudaFree(ones));
    ones = nullptr;
    length = 0;
    DGQA_CUDA_CHECK(cudaMalloc(&ones, sizeof(float) * n));
    fill_ones_kernel<<<grid_stride_blocks(n, kThreads), kThreads, 0, ctx.stream>>>(ones, n);
    DGQA_CUDA_CHECK_LAUNCH();
    length = n;
  }
  return ones;
}

// out (N, OC) = rows of bias, the starting point of a product added with beta = 1.
void broadcast_bias(float* out, const float* bias, int N, int OC) {
  broadcast_rows_kernel<<<grid_stride_blocks(static_cast<int64_t>(N) * OC, kThreads), kThreads, 0,
                          context().stream>>>(out, bias, N, OC);
  DGQA_CUDA_CHECK_LAUNCH();
}

// dbias (OC) += dout^T (OC, N) ones (N), in fp32: the dout buffer is column-major dout^T.
void accumulate_bias_gradient(float* dbias, const float* dout, int N, int OC) {
  const float one = 1.f;
  DGQA_CUBLAS_CHECK(cublasSgemv(context().cublas, CUBLAS_OP_N, OC, N, &one, dout, OC,
                                device_ones(N), 1, &one, dbias, 1));
}

// --- bf16 products through cuBLASLt

// One column-major product D (m, n) = op(A) (m, k) op(B) (k, n) + beta D [+ bias], with A and B
// bf16 and D fp32, accumulated in fp32 (CUBLAS_COMPUTE_32F). C is D itself (in place).
struct Bf16Product {
  cublasOperation_t transa, transb;
  int m, n, k;
  const __nv_bfloat16* a;
  int lda;
  const __nv_bfloat16* b;
  int ldb;
  float* d;
  int ldd;
  float beta;
  const float* bias;  // length m, added by the CUBLASLT_EPILOGUE_BIAS epilogue; or null
};

// The largest power of two (at most 256) that divides the address: the alignment the heuristic
// may assume of a matrix (the MIN_ALIGNMENT_*_BYTES preferences) or of the bias.
uint32_t alignment_of(const void* pointer) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(pointer);
  uint32_t alignment = 256;
  while (alignment > 1 && address % alignment != 0) alignment /= 2;
  return alignment;
}

// Everything the heuristic's choice depends on: the shape, the operations, the leading
// dimensions, the epilogue and the pointers' alignments (a weight in the bf16 mirror, an
// activation in a model buffer, a bias in the parameters each sit at some offset of a larger
// allocation, so their alignment varies from product to product).
using PlanKey = std::tuple<int, int, int, int, int, int, int, int, bool, uint32_t, uint32_t,
                           uint32_t, uint32_t>;

PlanKey key_of(const Bf16Product& p) {
  return PlanKey(p.transa, p.transb, p.m, p.n, p.k, p.lda, p.ldb, p.ldd, p.bias != nullptr,
                 alignment_of(p.a), alignment_of(p.b), alignment_of(p.d),
                 p.bias != nullptr ? alignment_of(p.bias) : 0u);
}

// The descriptors of one key and the algorithm the heuristic chose for them, made once and kept
// for the life of the process (a model has a handful of shapes). has_algo is false when cuBLASLt
// offers none for the key: the product then goes through cublasGemmEx (same types and compute).
struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  bool has_algo = false;
  cublasLtMatmulAlgo_t algo{};
};

// The cuBLASLt workspace (one, shared by every product on the one stream), the plans, and the
// count of products that took the cublasGemmEx fallback.
struct LtState {
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  std::map<PlanKey, Plan> plans;
  int64_t fallbacks = 0;
};

LtState& lt_state() {
  // Made on first use; never destroyed, like the context (cuda_context.cu says why).
  static LtState* const state = [] {
    CudaContext& ctx = context();
    int major = 0;
    DGQA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, ctx.device));
    auto* created = new LtState;
    // The cuBLAS guide's recommendation (cublasSetWorkspace): 32 MiB on Hopper and later, 4 MiB
    // before. cudaMalloc's alignment (>= 256 bytes) is more than cuBLASLt asks of a workspace.
    created->workspace_bytes = (major >= 9 ? 32 : 4) << 20;
    DGQA_CUDA_CHECK(cudaMalloc(&created->workspace, created->workspace_bytes));
    return created;
  }();
  return *state;
}

template <typename T>
void set_desc_attribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attribute,
                        const T& value) {
  DGQA_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, attribute, &value, sizeof(value)));
}

template <typename T>
void set_preference(cublasLtMatmulPreference_t preference,
                    cublasLtMatmulPreferenceAttributes_t attribute, const T& value) {
  DGQA_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(preference, attribute, &value, sizeof(value)));
}

Plan make_plan(const Bf16Product& p, size_t workspace_bytes) {
  Plan plan;
  // Compute type: fp32 accumulation; scale type (alpha, beta): fp32, host pointers (the default
  // CUBLASLT_POINTER_MODE_HOST).
  DGQA_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  set_desc_attribute<int32_t>(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, p.transa);
  set_desc_attribute<int32_t>(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, p.transb);
  if (p.bias != nullptr) {
    // Bias only. Not GELU_BIAS: cuBLASLt's GELU epilogues compute the tanh approximation of GELU,
    // and this project's GELU is the exact erf form (PyTorch's nn.GELU default, docs/design.md §3),
    // so GELU stays its own kernel (gelu.cu) after the fc1 product.
    set_desc_attribute<uint32_t>(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_BIAS);
    // The bias type defaults to D's (fp32); stated explicitly so that the fp32 bias of the fp32
    // master parameters is what the epilogue reads, whatever a later default may be.
    set_desc_attribute<int32_t>(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, CUDA_R_32F);
    // The heuristic below depends on this pointer's alignment; run() sets each call's pointer.
    set_desc_attribute<const void*>(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, p.bias);
  }
  // Each layout describes the matrix as stored: op(A) is (m, k), so A is (m, k) untransposed and
  // (k, m) transposed; likewise B for (k, n).
  const bool a_plain = p.transa == CUBLAS_OP_N, b_plain = p.transb == CUBLAS_OP_N;
  DGQA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.a, CUDA_R_16BF, a_plain ? p.m : p.k,
                                               a_plain ? p.k : p.m, p.lda));
  DGQA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.b, CUDA_R_16BF, b_plain ? p.k : p.n,
                                               b_plain ? p.n : p.k, p.ldb));
  DGQA_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.d, CUDA_R_32F, p.m, p.n, p.ldd));

  cublasLtMatmulPreference_t preference = nullptr;
  DGQA_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  set_preference<uint64_t>(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, workspace_bytes);
  set_preference<uint32_t>(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                           alignment_of(p.a));
  set_preference<uint32_t>(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                           alignment_of(p.b));
  set_preference<uint32_t>(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                           alignment_of(p.d));
  set_preference<uint32_t>(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                           alignment_of(p.d));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t status =
      cublasLtMatmulAlgoGetHeuristic(context().cublaslt, plan.desc, plan.a, plan.b, plan.d, plan.d,
                                     preference, 1, &result, &found);
  DGQA_CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(preference));
  // No algorithm (found == 0, or NOT_SUPPORTED: no heuristic for this configuration): the
  // fallback computes the product, correctly if more slowly; tests count the fallbacks
  // (matmul_bf16_fallbacks) to check that the usual shapes never take it. Any other status is a
  // mistake in the descriptors, not a missing algorithm.
  if (status != CUBLAS_STATUS_SUCCESS && status != CUBLAS_STATUS_NOT_SUPPORTED) {
    throw_cuda_error("cublasLtMatmulAlgoGetHeuristic", cublasGetStatusString(status), __FILE__,
                     __LINE__);
  }
  plan.has_algo = status == CUBLAS_STATUS_SUCCESS && found > 0 &&
                  result.state == CUBLAS_STATUS_SUCCESS && result.workspaceSize <= workspace_bytes;
  if (plan.has_algo) plan.algo = result.algo;
  return plan;
}

void run(const Bf16Product& p) {
  CudaContext& ctx = context();
  LtState& lt = lt_state();
  const PlanKey key = key_of(p);
  auto found = lt.plans.find(key);
  if (found == lt.plans.end())
    found = lt.plans.emplace(key, make_plan(p, lt.workspace_bytes)).first;
  Plan& plan = found->second;
  const float alpha = 1.f;
  if (plan.has_algo) {
    // The plan may come from a product with another bias of the same alignment.
    if (p.bias != nullptr) {
      set_desc_attribute<const void*>(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, p.bias);
    }
    const cublasStatus_t status = cublasLtMatmul(
        ctx.cublaslt, plan.desc, &alpha, p.a, plan.a, p.b, plan.b, &p.beta, p.d, plan.d, p.d,
        plan.d, &plan.algo, lt.workspace, lt.workspace_bytes, ctx.stream);
    if (status == CUBLAS_STATUS_SUCCESS) return;
    if (status != CUBLAS_STATUS_NOT_SUPPORTED) {
      throw_cuda_error("cublasLtMatmul", cublasGetStatusString(status), __FILE__, __LINE__);
    }
    plan.has_algo = false;  // the heuristic's choice cannot run it after all: fall back, always
  }
  // No cuBLASLt algorithm (an odd shape or alignment): cublasGemmEx, with the same bf16 inputs,
  // fp32 output and fp32 compute, and the bias added as rows of D first (beta = 1).
  ++lt.fallbacks;
  float beta = p.beta;
  if (p.bias != nullptr) {
    if (p.beta != 0.f || p.ldd != p.m) {
      throw std::logic_error("matmul bf16: a bias needs beta = 0 and a packed D");
    }
    broadcast_bias(p.d, p.bias, p.n, p.m);
    beta = 1.f;
  }
  DGQA_CUBLAS_CHECK(cublasGemmEx(ctx.cublas, p.transa, p.transb, p.m, p.n, p.k, &alpha, p.a,
                                 CUDA_R_16BF, p.lda, p.b, CUDA_R_16BF, p.ldb, &beta, p.d,
                                 CUDA_R_32F, p.ldd, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int C, int OC) {
  if (N == 0 || OC == 0) return;
  CudaContext& ctx = context();
  if (C == 0) {  // an empty sum: out is the bias, or zero (cuBLAS refuses a leading dimension 0)
    if (bias != nullptr) {
      broadcast_bias(out, bias, N, OC);
    } else {
      DGQA_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(float) * N * OC, ctx.stream));
    }
    return;
  }
  // With a bias, every row of out starts as the bias and the product is added to it (beta = 1).
  float beta = 0.f;
  if (bias != nullptr) {
    broadcast_bias(out, bias, N, OC);
    beta = 1.f;
  }
  // out (N, OC) = inp (N, C) weight^T, i.e. column-major out^T (OC, N) = weight (OC, C) inp^T,
  // where the weight buffer is column-major weight^T (C, OC): transpose it.
  const float alpha = 1.f;
  DGQA_CUBLAS_CHECK(cublasSgemm(ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &alpha, weight, C,
                                inp, C, &beta, out, OC));
}

void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int C, int OC) {
  if (N == 0 || OC == 0) return;  // every sum is empty: nothing to add
  CudaContext& ctx = context();
  if (C == 0) {  // dinp and dweight have no elements (cuBLAS refuses a leading dimension 0)
    if (dbias != nullptr) accumulate_bias_gradient(dbias, dout, N, OC);
    return;
  }
  const float one = 1.f;  // alpha, and beta: every gradient accumulates
  // dinp (N, C) += dout (N, OC) weight (OC, C), i.e. column-major
  // dinp^T (C, N) += weight^T (C, OC) dout^T (OC, N): both buffers as they are.
  if (dinp != nullptr) {
    DGQA_CUBLAS_CHECK(cublasSgemm(ctx.cublas, CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, &one, weight, C,
                                  dout, OC, &one, dinp, C));
  }
  // dweight (OC, C) += dout^T (OC, N) inp (N, C), i.e. column-major
  // dweight^T (C, OC) += inp^T (C, N) dout (N, OC): the dout buffer (dout^T) transposed.
  DGQA_CUBLAS_CHECK(cublasSgemm(ctx.cublas, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, &one, inp, C, dout,
                                OC, &one, dweight, C));
  if (dbias != nullptr) accumulate_bias_gradient(dbias, dout, N, OC);
}

int64_t matmul_bf16_fallbacks() {
  return lt_state().fallbacks;
}

// The same three products as the fp32 functions above, in the same column-major terms.
void matmul_forward_bf16(float* out, const __nv_bfloat16* inp, const __nv_bfloat16* weight,
                         const float* bias, int N, int C, int OC) {
  // out^T (OC, N) = op(weight buffer) (OC, C) inp^T (C, N) [+ bias broadcast over columns]:
  // D has OC rows, the length of the bias vector, as the BIAS epilogue requires.
  run({CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, weight, C, inp, C, out, OC, 0.f, bias});
}

void matmul_backward_bf16(float* dinp, float* dweight, float* dbias, const float* dout,
                          const __nv_bfloat16* dout_bf16, const __nv_bfloat16* inp,
                          const __nv_bfloat16* weight, int N, int C, int OC) {
  // Gradients accumulate (kernels/cpu/matmul.h): beta = 1, C = D = the gradient buffer.
  // dinp^T (C, N) += weight^T (C, OC) dout^T (OC, N)
  if (dinp != nullptr) {
    run({CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, weight, C, dout_bf16, OC, dinp, C, 1.f, nullptr});
  }
  // dweight^T (C, OC) += inp^T (C, N) op(dout^T) (N, OC)
  run({CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, inp, C, dout_bf16, OC, dweight, C, 1.f, nullptr});
  // dbias: the fp32 gemv of the fp32 path, on the fp32 dout, not cuBLASLt's BGRADB epilogue on
  // the dweight product. BGRADB writes the bias gradient (dbias = sum), it does not add to it,
  // so accumulating would take a scratch vector and an add kernel; and it would sum the bf16
  // rounding of dout when the exact fp32 dout is at hand. The gemv reads dout once (N * OC
  // floats, a small fraction of the product's time) and accumulates with beta = 1.
  if (dbias != nullptr) accumulate_bias_gradient(dbias, dout, N, OC);
}

}  // namespace dgqa::cuda
