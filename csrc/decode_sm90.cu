// The split-KV decode kernel (correctness-first version: mma.sync + ldmatrix + cp.async).
//
// Grid: (ceil(rows_per_kv_head / 64), h_kv, num_sm_parts); block: kDecodeThreads = 256 threads;
// dynamic shared memory: kDecodeSmemBytes (DecodeSharedStorage in smem_sizes.h, 225 KiB; the
// launcher raises cudaFuncAttributeMaxDynamicSharedMemorySize to it).
//
// CTA (x, y, z) handles query rows m = 64x .. 64x+63 of KV head y (m = s * group_size + g, the
// q head being y * group_size + g) for part z of the tile schedule. It walks the part's pieces,
// sequences begin_batch .. end_batch; piece i covers tokens [i == begin_batch ? begin_token : 0,
// i == end_batch ? end_token : len_i). For each piece it loads the Q tile once, then streams the
// piece's KV blocks of 64 tokens through two shared-memory buffers (cp.async, one block in flight
// while the other is computed), and for each block computes S = Q·Kᵀ, the online softmax and
// O += P·V (decode_tile.cuh). A sequence cut into one split gets its final out (q's dtype) and lse
// here; otherwise the piece writes its float32 partial out (normalised by its own sum) and partial
// lse to o_accum / lse_accum at split row num_splits[i] + split index, for the combine kernel.
//
// Robustness: lengths are clamped to [0, max_blocks_per_seq * 64] and the schedule's token range
// to [0, len]; tokens outside the piece and rows of block ids outside [0, num_cache_blocks) are
// zero-filled by cp.async (never read), and masked to -inf by index, so NaN/Inf in unattended cache
// rows cannot reach a product. Emptiness of a row is decided from index bounds, never from its max,
// so NaN in q propagates to out and lse.
#include "decode_tile.cuh"

namespace flashmla::decode {

static_assert(sizeof(DecodeSharedStorage) == kDecodeSmemBytes, "launch size is the storage plan");

// Writes one row's result for one piece: the final out/lse, or the partial out/lse of a split.
// Every thread writes its two columns of each of its 32 n-tiles; lane 0 of the quad in the first
// half writes lse.
template <typename T>
__device__ __forceinline__ void store_row(const DecodeParams& p, const Accumulator& acc, int rr, int batch,
                                          int kv_head, int m, int half, bool is_final, int split_row,
                                          bool attends, float total_sum) {
  const AttentionShape& sh = p.shape;
  const int s = m / sh.group_size;
  const int q_head = kv_head * sh.group_size + (m - s * sh.group_size);
  const int tig = static_cast<int>(threadIdx.x) % 4;
  const float inv_sum = attends ? 1.f / total_sum : 0.f;
  const float empty_lse = is_final ? INFINITY : -INFINITY;
  const float lse = attends ? acc.row_max[rr] * sh.softmax_scale + logf(total_sum) : empty_lse;
  const int col0 = half * kColsPerWarp + 2 * tig;
  if (is_final) {
    T* out = static_cast<T*>(p.out) + static_cast<int64_t>(batch) * sh.out_batch_stride +
             static_cast<int64_t>(s) * sh.out_row_stride + static_cast<int64_t>(q_head) * sh.out_head_stride + col0;
#pragma unroll
    for (int nt = 0; nt < kOutTiles; ++nt) {
      const float lo = attends ? acc.o[nt][2 * rr] * inv_sum : 0.f;
      const float hi = attends ? acc.o[nt][2 * rr + 1] * inv_sum : 0.f;
      *reinterpret_cast<uint32_t*>(out + nt * 8) = Elem<T>::pack(lo, hi);
    }
    if (half == 0 && tig == 0) {
      p.lse[(static_cast<int64_t>(batch) * sh.num_heads_q + q_head) * sh.seqlen_q + s] = lse;
    }
  } else {
    const int64_t accum_row =
        (static_cast<int64_t>(split_row) * sh.num_heads_kv + kv_head) * sh.rows_per_kv_head + m;
    float* out = p.o_accum + accum_row * kHeadDimV + col0;
#pragma unroll
    for (int nt = 0; nt < kOutTiles; ++nt) {
      const float lo = attends ? acc.o[nt][2 * rr] * inv_sum : 0.f;
      const float hi = attends ? acc.o[nt][2 * rr + 1] * inv_sum : 0.f;
      *reinterpret_cast<float2*>(out + nt * 8) = make_float2(lo, hi);
    }
    if (half == 0 && tig == 0) p.lse_accum[accum_row] = lse;
  }
}

template <typename T>
__device__ __forceinline__ void decode_cta(const DecodeParams& p, DecodeSharedStorage& smem) {
  const AttentionShape& sh = p.shape;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int band = warp % 4;
  const int half = warp / 4;
  const int gid = lane / 4;
  const int tig = lane % 4;
  const int row0 = static_cast<int>(blockIdx.x) * kRowTile;
  const int kv_head = static_cast<int>(blockIdx.y);
  const int part = static_cast<int>(blockIdx.z);

  // Wait for the kernel that wrote the schedule when launched programmatically (else a no-op).
  ptx::griddep_wait();
  if (part >= p.num_sm_parts || kv_head >= sh.num_heads_kv || sh.batch <= 0) {
    ptx::griddep_launch_dependents();
    return;
  }
  const int32_t* schedule = p.tile_scheduler_metadata + static_cast<int64_t>(part) * kMetadataIntsPerPart;
  const int begin_batch = max(schedule[0], 0);
  const int begin_token = schedule[1];
  const int end_batch = min(schedule[2], sh.batch - 1);
  const int end_token = schedule[3];
  const int begin_split = schedule[4];
  if (end_batch < begin_batch) {
    ptx::griddep_launch_dependents();
    return;
  }

  const uint32_t q_smem = ptx::smem_addr(smem.q);
  const uint32_t kv_smem0 = ptx::smem_addr(smem.kv[0]);
  constexpr uint32_t kKvBufferBytes = sizeof(smem.kv[0]);
  const int64_t capacity = max(static_cast<int64_t>(sh.max_blocks_per_seq) * kPageBlockSize, int64_t{0});
  Accumulator acc;

  for (int batch = begin_batch; batch <= end_batch; ++batch) {
    const int len = static_cast<int>(min(max(static_cast<int64_t>(p.cache_seqlens[batch]), int64_t{0}), capacity));
    const int tok_end = min(batch == end_batch ? end_token : len, len);
    const int tok_begin = min(max(batch == begin_batch ? begin_token : 0, 0), max(tok_end, 0));
    const int first_page = tok_begin / kPageBlockSize;
    const int end_page = tok_end / kPageBlockSize + (tok_end % kPageBlockSize != 0 ? 1 : 0);
    const int num_tiles = tok_end > tok_begin ? end_page - first_page : 0;

    // Row rr attends the piece's keys [tok_begin, key_end[rr]); causal rows stop at len - s_q + s.
    int key_end[2];
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      const int s_of_row = (row0 + band * kBandRows + gid + 8 * rr) / sh.group_size;
      const int64_t causal_end = static_cast<int64_t>(len) - sh.seqlen_q + s_of_row + 1;
      const int64_t end = sh.causal ? min(static_cast<int64_t>(tok_end), causal_end) : tok_end;
      key_end[rr] = static_cast<int>(max(end, static_cast<int64_t>(tok_begin)));
    }

    reset(acc);
    float total_sum[2] = {0.f, 0.f};
    if (num_tiles > 0) {
      load_q_tile<T>(p, q_smem, batch, row0, kv_head);
      load_kv_tile<T>(p, kv_smem0, batch, first_page, tok_begin - first_page * kPageBlockSize,
                      tok_end - first_page * kPageBlockSize, kv_head);
      ptx::cp_async_commit();
      if (num_tiles > 1) {
        const int tok0 = (first_page + 1) * kPageBlockSize;
        load_kv_tile<T>(p, kv_smem0 + kKvBufferBytes, batch, first_page + 1, tok_begin - tok0, tok_end - tok0,
                        kv_head);
        ptx::cp_async_commit();
      }
      for (int n = 0; n < num_tiles; ++n) {
        if (n + 1 < num_tiles) {
          ptx::cp_async_wait<1>();
        } else {
          ptx::cp_async_wait<0>();
        }
        __syncthreads();  // block n (and Q) visible to every warp
        const uint32_t kv_smem = kv_smem0 + (n & 1) * kKvBufferBytes;
        const int tok0 = (first_page + n) * kPageBlockSize;
        float s[kScoreTiles][4];
        compute_scores<T>(q_smem, kv_smem, band, half, s);
        const int key_hi[2] = {key_end[0] - tok0, key_end[1] - tok0};
        softmax_step<T>(smem, acc, s, band, half, tok_begin - tok0, key_hi, sh.softmax_scale_log2);
        accumulate_pv<T>(smem, kv_smem, acc, band, half);
        __syncthreads();  // every warp is done with buffer n & 1 (and, after the last block, with Q)
        if (n + 2 < num_tiles) {
          const int next0 = (first_page + n + 2) * kPageBlockSize;
          load_kv_tile<T>(p, kv_smem, batch, first_page + n + 2, tok_begin - next0, tok_end - next0, kv_head);
          ptx::cp_async_commit();
        }
      }

      // Each row's sum: the quad's four lanes, then the band's two warps (added in a fixed order
      // so that both warps hold the same bits).
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {
        float sum = acc.row_sum[rr];
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        if (tig == 0) smem.row_sum[half][band * kBandRows + gid + 8 * rr] = sum;
      }
      ptx::named_barrier_sync(1 + band, 64);
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {
        const int row = band * kBandRows + gid + 8 * rr;
        total_sum[rr] = smem.row_sum[0][row] + smem.row_sum[1][row];
      }
      // The next reuse of row_sum is behind the next piece's __syncthreads (pieces without
      // blocks do not touch it), so no barrier is needed after these reads.
    }

    if (batch == end_batch) ptx::griddep_launch_dependents();

    const int split_first = p.num_splits[batch];
    const bool is_final = p.num_splits[batch + 1] - split_first <= 1;
    const int split_row = split_first + (batch == begin_batch ? begin_split : 0);
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      const int m = row0 + band * kBandRows + gid + 8 * rr;
      if (m >= sh.rows_per_kv_head) continue;  // padding row of the last tile
      store_row<T>(p, acc, rr, batch, kv_head, m, half, is_final, split_row, key_end[rr] > tok_begin,
                   total_sum[rr]);
    }
  }
}

}  // namespace flashmla::decode

extern "C" __global__ void __launch_bounds__(flashmla::kDecodeThreads, 1)
    flashmla_decode_bf16(const __grid_constant__ DecodeParams p) {
  extern __shared__ __align__(1024) uint8_t decode_smem[];
  flashmla::decode::decode_cta<__nv_bfloat16>(p, *reinterpret_cast<flashmla::DecodeSharedStorage*>(decode_smem));
}

extern "C" __global__ void __launch_bounds__(flashmla::kDecodeThreads, 1)
    flashmla_decode_fp16(const __grid_constant__ DecodeParams p) {
  extern __shared__ __align__(1024) uint8_t decode_smem[];
  flashmla::decode::decode_cta<__half>(p, *reinterpret_cast<flashmla::DecodeSharedStorage*>(decode_smem));
}
