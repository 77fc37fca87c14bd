/*
 * AES-128-CBC encryption of several buffers at once, in place, with AES-NI. CBC encryption is sequential
 * within one buffer (each block needs the previous ciphertext), so one stream waits on the AESENC latency;
 * four independent streams interleaved keep the unit busy: about four times OpenSSL's single-stream rate.
 * Only the encryption direction: CBC decryption is parallel within a buffer and OpenSSL already does it well.
 * Compiled with -maes; the addon calls it only when the CPU has AES-NI.
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  __m128i k[11];
} round_keys;

#define EXPAND(i, rcon)                                                        \
  do {                                                                         \
    __m128i t = _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk->k[i - 1], rcon), 0xff); \
    __m128i k = rk->k[i - 1];                                                  \
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));                                \
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));                                \
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));                                \
    rk->k[i] = _mm_xor_si128(k, t);                                            \
  } while (0)

/* The AES-128 key schedule (FIPS 197, section 5.2). */
static void expand_key(const uint8_t *key, round_keys *rk) {
  rk->k[0] = _mm_loadu_si128((const __m128i *)key);
  EXPAND(1, 0x01); EXPAND(2, 0x02); EXPAND(3, 0x04); EXPAND(4, 0x08); EXPAND(5, 0x10);
  EXPAND(6, 0x20); EXPAND(7, 0x40); EXPAND(8, 0x80); EXPAND(9, 0x1b); EXPAND(10, 0x36);
}

static inline __m128i encrypt_block(__m128i x, const round_keys *rk) {
  x = _mm_xor_si128(x, rk->k[0]);
  for (int r = 1; r < 10; r++) x = _mm_aesenc_si128(x, rk->k[r]);
  return _mm_aesenclast_si128(x, rk->k[10]);
}

/* One stream from block `from` on: the tails of streams longer than the others, and groups of fewer than four. */
static void cbc_one(uint8_t *buf, size_t blocks, size_t from, const round_keys *rk, __m128i *chain) {
  for (size_t b = from; b < blocks; b++) {
    __m128i x = encrypt_block(_mm_xor_si128(_mm_loadu_si128((const __m128i *)(buf + 16 * b)), *chain), rk);
    _mm_storeu_si128((__m128i *)(buf + 16 * b), x);
    *chain = x;
  }
}

/* Encrypt n buffers in place; len[i] is a multiple of 16 (the caller has added the PKCS#7 padding). */
void aes128_cbc_encrypt_many(uint8_t *const *buf, const size_t *len, const uint8_t *const *key, const uint8_t *const *iv, size_t n) {
  for (size_t g = 0; g < n; g += 4) {
    size_t k = n - g < 4 ? n - g : 4;
    round_keys rk[4];
    __m128i chain[4];
    size_t blocks[4], common = SIZE_MAX;
    for (size_t l = 0; l < k; l++) {
      expand_key(key[g + l], &rk[l]);
      chain[l] = _mm_loadu_si128((const __m128i *)iv[g + l]);
      blocks[l] = len[g + l] / 16;
      if (blocks[l] < common) common = blocks[l];
    }
    if (k < 4) common = 0;
    uint8_t *p0 = buf[g], *p1 = k == 4 ? buf[g + 1] : 0, *p2 = k == 4 ? buf[g + 2] : 0, *p3 = k == 4 ? buf[g + 3] : 0;
    for (size_t b = 0; b < common; b++) {
      size_t at = 16 * b;
      __m128i x0 = _mm_xor_si128(_mm_xor_si128(_mm_loadu_si128((const __m128i *)(p0 + at)), chain[0]), rk[0].k[0]);
      __m128i x1 = _mm_xor_si128(_mm_xor_si128(_mm_loadu_si128((const __m128i *)(p1 + at)), chain[1]), rk[1].k[0]);
      __m128i x2 = _mm_xor_si128(_mm_xor_si128(_mm_loadu_si128((const __m128i *)(p2 + at)), chain[2]), rk[2].k[0]);
      __m128i x3 = _mm_xor_si128(_mm_xor_si128(_mm_loadu_si128((const __m128i *)(p3 + at)), chain[3]), rk[3].k[0]);
      for (int r = 1; r < 10; r++) {
        x0 = _mm_aesenc_si128(x0, rk[0].k[r]);
        x1 = _mm_aesenc_si128(x1, rk[1].k[r]);
        x2 = _mm_aesenc_si128(x2, rk[2].k[r]);
        x3 = _mm_aesenc_si128(x3, rk[3].k[r]);
      }
      chain[0] = _mm_aesenclast_si128(x0, rk[0].k[10]);
      chain[1] = _mm_aesenclast_si128(x1, rk[1].k[10]);
      chain[2] = _mm_aesenclast_si128(x2, rk[2].k[10]);
      chain[3] = _mm_aesenclast_si128(x3, rk[3].k[10]);
      _mm_storeu_si128((__m128i *)(p0 + at), chain[0]);
      _mm_storeu_si128((__m128i *)(p1 + at), chain[1]);
      _mm_storeu_si128((__m128i *)(p2 + at), chain[2]);
      _mm_storeu_si128((__m128i *)(p3 + at), chain[3]);
    }
    for (size_t l = 0; l < k; l++) cbc_one(buf[g + l], blocks[l], common, &rk[l], &chain[l]);
  }
}

/*
 * AES-128-CBC decryption of one buffer in place (len a multiple of 16), with the chunk format's pad XOR undone
 * on the way in when `pad` is given (64 bytes, repeated from the buffer's start: ciphertext = stored ^ pad).
 * Unlike encryption it is parallel within a buffer (each plaintext block is D(C[i]) ^ C[i-1]), so eight blocks
 * are decrypted side by side; in place, one pass, with no output buffer to allocate, the mount's read path
 * opens a chunk where it was read (lib/slab.ts).
 */
void aes128_cbc_decrypt(uint8_t *buf, size_t len, const uint8_t *key, const uint8_t *iv, const uint8_t *pad) {
  round_keys ek, dk;
  expand_key(key, &ek);
  dk.k[0] = ek.k[10];
  for (int r = 1; r < 10; r++) dk.k[r] = _mm_aesimc_si128(ek.k[10 - r]);
  dk.k[10] = ek.k[0];
  /* Block i is masked with pad block i % 4: eight blocks at a time see the four twice, in order. */
  __m128i p[4];
  for (int j = 0; j < 4; j++) p[j] = pad ? _mm_loadu_si128((const __m128i *)(pad + 16 * j)) : _mm_setzero_si128();
  __m128i prev = _mm_loadu_si128((const __m128i *)iv);
  size_t blocks = len / 16, b = 0;
  for (; b + 8 <= blocks; b += 8) {
    __m128i *q = (__m128i *)(buf + 16 * b);
    __m128i c[8], x[8];
    for (int j = 0; j < 8; j++) c[j] = _mm_xor_si128(_mm_loadu_si128(q + j), p[j & 3]), x[j] = _mm_xor_si128(c[j], dk.k[0]);
    for (int r = 1; r < 10; r++)
      for (int j = 0; j < 8; j++) x[j] = _mm_aesdec_si128(x[j], dk.k[r]);
    for (int j = 0; j < 8; j++) x[j] = _mm_aesdeclast_si128(x[j], dk.k[10]);
    _mm_storeu_si128(q, _mm_xor_si128(x[0], prev));
    for (int j = 1; j < 8; j++) _mm_storeu_si128(q + j, _mm_xor_si128(x[j], c[j - 1]));
    prev = c[7];
  }
  for (; b < blocks; b++) {
    __m128i *q = (__m128i *)(buf + 16 * b);
    __m128i c = _mm_xor_si128(_mm_loadu_si128(q), p[b & 3]), x = _mm_xor_si128(c, dk.k[0]);
    for (int r = 1; r < 10; r++) x = _mm_aesdec_si128(x, dk.k[r]);
    _mm_storeu_si128(q, _mm_xor_si128(_mm_aesdeclast_si128(x, dk.k[10]), prev));
    prev = c;
  }
}
