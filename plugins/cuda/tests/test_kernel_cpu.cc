// SPDX-License-Identifier: Apache-2.0
// The copy kernels of plugins/cuda/fy_copy.cu, compiled as plain C++ and run
// on the CPU, one simulated thread after another: their index arithmetic
// (groups, lanes, unrolled vector bodies, unaligned heads and tails) must
// copy every byte of every item exactly where it belongs and nothing else,
// for every alignment of source and destination, every group width and
// grid shape the host code can pick. Threads of a launch touch disjoint
// bytes, so running them in turn gives the GPU's result.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

struct fy_dim3 {
    unsigned x, y, z;
};
static fy_dim3 blockIdx, threadIdx, gridDim, blockDim;
struct uint4 {
    unsigned x, y, z, w;
};
#define __device__
#define __forceinline__ inline
#define __global__
#define __launch_bounds__(n)
#define __restrict__
#define __grid_constant__
#include "fy_copy.cu"

extern "C" {
#include "cuda_plan.h"
}

static int failures, checks;

static void run_items(const fy_cu_item *items, unsigned long long n, unsigned group,
                      unsigned blocks)
{
    gridDim = {blocks, 1, 1};
    blockDim = {FY_CU_BLOCK, 1, 1};
    for (unsigned b = 0; b < blocks; b++)
        for (unsigned t = 0; t < FY_CU_BLOCK; t++) {
            blockIdx = {b, 0, 0};
            threadIdx = {t, 0, 0};
            fy_copy_items(items, n, group);
        }
}

static void run_inline(const fy_cu_inline_args &a, unsigned blocks)
{
    gridDim = {blocks, 1, 1};
    blockDim = {FY_CU_BLOCK, 1, 1};
    for (unsigned b = 0; b < blocks; b++)
        for (unsigned t = 0; t < FY_CU_BLOCK; t++) {
            blockIdx = {b, 0, 0};
            threadIdx = {t, 0, 0};
            fy_copy_inline(a);
        }
}

static void run_strided(const fy_cu_strided_args &a, unsigned blocks)
{
    gridDim = {blocks, 1, 1};
    blockDim = {FY_CU_BLOCK, 1, 1};
    for (unsigned b = 0; b < blocks; b++)
        for (unsigned t = 0; t < FY_CU_BLOCK; t++) {
            blockIdx = {b, 0, 0};
            threadIdx = {t, 0, 0};
            fy_copy_strided(a);
        }
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

// n items of random lengths/alignments from src into dst (disjoint slots),
// launched as the plugin would and with other shapes; dst checked whole.
static void one_case(uint64_t seed, size_t n, uint64_t max_len, bool inl, unsigned group,
                     unsigned blocks)
{
    uint64_t s = seed | 1;
    const uint64_t slot = max_len + 64;
    std::vector<uint8_t> src(n * slot + 64), dst(n * slot + 64), want;
    for (auto &b : src)
        b = (uint8_t)rnd(&s);
    for (auto &b : dst)
        b = (uint8_t)rnd(&s);
    want = dst;
    std::vector<fy_cu_item> items(n);
    for (size_t i = 0; i < n; i++) {
        uint64_t len = 1 + rnd(&s) % max_len, so = rnd(&s) % 33, doff = rnd(&s) % 33;
        if (rnd(&s) % 3 == 0) // same alignment: the 16-byte path
            doff = so;
        uint64_t sa = i * slot + so, da = (n - 1 - i) * slot + doff;
        items[i] = {(uint64_t)(uintptr_t)&src[sa], (uint64_t)(uintptr_t)&dst[da], len};
        memcpy(&want[da], &src[sa], len);
    }
    if (inl) {
        fy_cu_inline_args a{};
        for (size_t i = 0; i < n; i++)
            a.items[i] = items[i];
        a.n = n;
        a.group = group;
        run_inline(a, blocks);
    } else {
        run_items(items.data(), n, group, blocks);
    }
    checks++;
    if (dst != want) {
        failures++;
        printf("# seed %llu n %zu max %llu group %u blocks %u inline %d: wrong bytes\n",
               (unsigned long long)seed, n, (unsigned long long)max_len, group, blocks, (int)inl);
    }
}

// n pairs of len-byte blocks between two strided lists of slots, picked by
// random index arrays (sources may repeat, destinations are distinct: two
// writes of one block would race on a GPU), cut into pieces of chunk bytes.
static void strided_case(uint64_t seed, unsigned n, uint64_t len, uint64_t chunk, unsigned group,
                         unsigned blocks)
{
    uint64_t s = seed | 1;
    const unsigned slots = n + 5;
    const uint64_t sstride = len + rnd(&s) % 40, dstride = len + rnd(&s) % 40;
    std::vector<uint8_t> src(slots * sstride + 64), dst(slots * dstride + 64), want;
    for (auto &b : src)
        b = (uint8_t)rnd(&s);
    for (auto &b : dst)
        b = (uint8_t)rnd(&s);
    want = dst;
    std::vector<unsigned> si(n), di(slots);
    for (unsigned i = 0; i < slots; i++)
        di[i] = i;
    for (unsigned i = 0; i < n; i++) {
        std::swap(di[i], di[i + rnd(&s) % (slots - i)]);
        si[i] = (unsigned)(rnd(&s) % slots);
    }
    const uint64_t so = rnd(&s) % 17, doff = rnd(&s) % 2 ? so : rnd(&s) % 17;
    for (unsigned i = 0; i < n; i++)
        memcpy(&want[doff + di[i] * dstride], &src[so + si[i] * sstride], len);
    fy_cu_strided_args a{};
    a.src = (uintptr_t)&src[so];
    a.dst = (uintptr_t)&dst[doff];
    a.src_stride = sstride;
    a.dst_stride = dstride;
    a.len = len;
    a.chunk = chunk;
    a.src_idx = (uintptr_t)si.data();
    a.dst_idx = (uintptr_t)di.data();
    a.n = n;
    a.pieces = (unsigned)((len + chunk - 1) / chunk);
    a.group = group;
    run_strided(a, blocks);
    checks++;
    if (dst != want) {
        failures++;
        printf("# strided seed %llu n %u len %llu chunk %llu group %u blocks %u: wrong bytes\n",
               (unsigned long long)seed, n, (unsigned long long)len, (unsigned long long)chunk,
               group, blocks);
    }
}

int main()
{
    uint64_t seed = 1;
    const unsigned groups[] = {32, 64, 128, 256};
    // Every group width and a few grids, small and mid-size items.
    for (unsigned g : groups)
        for (unsigned blocks : {1u, 3u, 8u})
            for (uint64_t max_len : {1ull, 17ull, 300ull, 5000ull}) {
                one_case(seed++, 40, max_len, false, g, blocks);
                one_case(seed++, FY_CU_INLINE_MAX, max_len, true, g, blocks);
            }
    // The shapes the host code picks, on items cut as it cuts them.
    for (size_t n : {1ul, 7ul, 16ul, 100ul, 700ul}) {
        fy_cu_grid gr = fy_cu_grid_for(n, 4);
        one_case(seed++, n, 70000, n <= FY_CU_INLINE_MAX, gr.group, gr.blocks);
    }
    // Strided requests: whole blocks and blocks cut into pieces (a last
    // piece shorter than the others), every group width.
    for (unsigned g : groups)
        for (uint64_t len : {1ull, 48ull, 4096ull, 5000ull})
            for (uint64_t chunk : {16ull, 1024ull, 1ull << 16})
                strided_case(seed++, 37, len, chunk < len ? chunk : len, g, 3);
    printf("%s 1 - kernel copies on the CPU (%d launches)\n1..1\n", failures ? "not ok" : "ok",
           checks);
    return failures ? 1 : 0;
}
