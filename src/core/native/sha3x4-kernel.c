/*
 * SHA3-256 of up to four messages at once: four Keccak-f[1600] states side by side, one 64-bit lane of
 * each in a 256-bit vector (GCC vector extensions). One message is sequential, but four run in the time
 * OpenSSL's scalar code takes for one or two. Compiled several times with different -m flags (generic,
 * AVX2, AVX-512VL, which turns the rotations into vprolq and chi into vpternlogq); KERNEL names each build.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef KERNEL
#error "build with -DKERNEL=name"
#endif

#define LANES 4
#define RATE 136 /* SHA3-256: 1088-bit rate */
typedef uint64_t vec __attribute__((vector_size(8 * LANES)));

static const uint64_t RC[24] = {
  0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
  0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
  0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
  0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
  0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
  0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL};

#define ROL(x, n) (((x) << (n)) | ((x) >> (64 - (n))))

/* Keccak-f[1600] on four states. a[x + 5y] is lane (x, y); the state stays in registers for all 24 rounds. */
static void permute(vec *s) {
  vec a00 = s[0], a01 = s[1], a02 = s[2], a03 = s[3], a04 = s[4], a05 = s[5], a06 = s[6], a07 = s[7], a08 = s[8],
      a09 = s[9], a10 = s[10], a11 = s[11], a12 = s[12], a13 = s[13], a14 = s[14], a15 = s[15], a16 = s[16],
      a17 = s[17], a18 = s[18], a19 = s[19], a20 = s[20], a21 = s[21], a22 = s[22], a23 = s[23], a24 = s[24];
  for (int r = 0; r < 24; r++) {
    /* theta */
    vec c0 = a00 ^ a05 ^ a10 ^ a15 ^ a20, c1 = a01 ^ a06 ^ a11 ^ a16 ^ a21, c2 = a02 ^ a07 ^ a12 ^ a17 ^ a22,
        c3 = a03 ^ a08 ^ a13 ^ a18 ^ a23, c4 = a04 ^ a09 ^ a14 ^ a19 ^ a24;
    vec d0 = c4 ^ ROL(c1, 1), d1 = c0 ^ ROL(c2, 1), d2 = c1 ^ ROL(c3, 1), d3 = c2 ^ ROL(c4, 1), d4 = c3 ^ ROL(c0, 1);
    /* rho and pi: lane (x, y) rotates by its offset and moves to (y, 2x + 3y) */
    vec b00 = a00 ^ d0;
    vec b10 = ROL(a01 ^ d1, 1), b20 = ROL(a02 ^ d2, 62), b05 = ROL(a03 ^ d3, 28), b15 = ROL(a04 ^ d4, 27);
    vec b16 = ROL(a05 ^ d0, 36), b01 = ROL(a06 ^ d1, 44), b11 = ROL(a07 ^ d2, 6), b21 = ROL(a08 ^ d3, 55), b06 = ROL(a09 ^ d4, 20);
    vec b07 = ROL(a10 ^ d0, 3), b17 = ROL(a11 ^ d1, 10), b02 = ROL(a12 ^ d2, 43), b12 = ROL(a13 ^ d3, 25), b22 = ROL(a14 ^ d4, 39);
    vec b23 = ROL(a15 ^ d0, 41), b08 = ROL(a16 ^ d1, 45), b18 = ROL(a17 ^ d2, 15), b03 = ROL(a18 ^ d3, 21), b13 = ROL(a19 ^ d4, 8);
    vec b14 = ROL(a20 ^ d0, 18), b24 = ROL(a21 ^ d1, 2), b09 = ROL(a22 ^ d2, 61), b19 = ROL(a23 ^ d3, 56), b04 = ROL(a24 ^ d4, 14);
    /* chi */
    a00 = b00 ^ (~b01 & b02); a01 = b01 ^ (~b02 & b03); a02 = b02 ^ (~b03 & b04); a03 = b03 ^ (~b04 & b00); a04 = b04 ^ (~b00 & b01);
    a05 = b05 ^ (~b06 & b07); a06 = b06 ^ (~b07 & b08); a07 = b07 ^ (~b08 & b09); a08 = b08 ^ (~b09 & b05); a09 = b09 ^ (~b05 & b06);
    a10 = b10 ^ (~b11 & b12); a11 = b11 ^ (~b12 & b13); a12 = b12 ^ (~b13 & b14); a13 = b13 ^ (~b14 & b10); a14 = b14 ^ (~b10 & b11);
    a15 = b15 ^ (~b16 & b17); a16 = b16 ^ (~b17 & b18); a17 = b17 ^ (~b18 & b19); a18 = b18 ^ (~b19 & b15); a19 = b19 ^ (~b15 & b16);
    a20 = b20 ^ (~b21 & b22); a21 = b21 ^ (~b22 & b23); a22 = b22 ^ (~b23 & b24); a23 = b23 ^ (~b24 & b20); a24 = b24 ^ (~b20 & b21);
    /* iota */
    a00 ^= (vec){0} + RC[r];
  }
  s[0] = a00; s[1] = a01; s[2] = a02; s[3] = a03; s[4] = a04; s[5] = a05; s[6] = a06; s[7] = a07; s[8] = a08;
  s[9] = a09; s[10] = a10; s[11] = a11; s[12] = a12; s[13] = a13; s[14] = a14; s[15] = a15; s[16] = a16;
  s[17] = a17; s[18] = a18; s[19] = a19; s[20] = a20; s[21] = a21; s[22] = a22; s[23] = a23; s[24] = a24;
}

/*
 * SHA3-256 of n (1 to 4) messages; out receives 32 * n bytes. Messages of different lengths are fine: each
 * lane absorbs its own blocks, then its padded last block, and its digest is read after that block; lanes
 * that are done (or unused) absorb zeros until the longest message ends.
 */
void KERNEL(const uint8_t *const *msg, const size_t *len, size_t n, uint8_t *out) {
  static const uint8_t zero[RATE];
  vec s[25];
  uint8_t last[LANES][RATE];
  size_t blocks[LANES] = {0}, most = 0;
  memset(s, 0, sizeof s);
  for (size_t l = 0; l < n; l++) {
    size_t full = len[l] / RATE, rest = len[l] % RATE;
    memset(last[l], 0, RATE);
    memcpy(last[l], msg[l] + full * RATE, rest);
    last[l][rest] ^= 0x06; /* SHA3 domain bits and the first bit of pad10*1 */
    last[l][RATE - 1] ^= 0x80;
    blocks[l] = full + 1;
    if (blocks[l] > most) most = blocks[l];
  }
  for (size_t b = 0; b < most; b++) {
    const uint8_t *p[LANES];
    for (size_t l = 0; l < LANES; l++)
      p[l] = l >= n || b >= blocks[l] ? zero : b + 1 == blocks[l] ? last[l] : msg[l] + b * RATE;
    for (int i = 0; i < RATE / 8; i++) {
      vec v;
      for (int l = 0; l < LANES; l++) {
        uint64_t w;
        memcpy(&w, p[l] + 8 * i, 8); /* little-endian lanes, any alignment */
        v[l] = w;
      }
      s[i] ^= v;
    }
    permute(s);
    for (size_t l = 0; l < n; l++)
      if (b + 1 == blocks[l])
        for (int i = 0; i < 4; i++) {
          uint64_t w = s[i][l];
          memcpy(out + 32 * l + 8 * i, &w, 8);
        }
  }
}

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)

/*
 * target[i] = source[i] ^ pad[(phase + i) % 64]: the chunk format's XOR with its 64-byte pad repeated over
 * the chunk, `phase` being where `source` starts in the chunk. 64 bytes at a time, which the compiler turns
 * into vector XORs of this build's width.
 */
void CAT(KERNEL, _xor_pad)(uint8_t *target, const uint8_t *source, size_t n, const uint8_t *pad, size_t phase) {
  uint8_t rotated[64];
  for (size_t k = 0; k < 64; k++) rotated[k] = pad[(phase + k) % 64];
  size_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (size_t k = 0; k < 64; k++) target[i + k] = source[i + k] ^ rotated[k];
  for (size_t k = 0; i < n; i++, k++) target[i] = source[i] ^ rotated[k];
}
