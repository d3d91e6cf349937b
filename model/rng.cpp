#include "model/rng.h"

#include <vector>

namespace moekit {

namespace {

using Poly = std::array<uint64_t, 8>;  // GF(2) polynomials of degree < 512; bit i = coefficient of x^i

bool bit(const Poly& p, int i) { return (p[static_cast<size_t>(i >> 6)] >> (i & 63)) & 1; }

// The characteristic polynomial of xoshiro256's state transition T (degree 256; x^256 is left
// implicit, the rest in four words): the minimal polynomial of one state bit's sequence, found
// by Berlekamp-Massey over GF(2). xoshiro256's period is 2^256 - 1, so it has degree 256.
std::array<uint64_t, 4> characteristic_polynomial() {
  constexpr int kDegree = 256, kLength = 2 * kDegree;
  Rng r;
  r.s = {0x9e3779b97f4a7c15ULL, 0xbf58476d1ce4e5b9ULL, 0x94d049bb133111ebULL, 0x2545f4914f6cdd1dULL};
  std::vector<uint8_t> a(kLength);
  for (int k = 0; k < kLength; ++k) {
    a[static_cast<size_t>(k)] = static_cast<uint8_t>(r.s[0] & 1);
    r.next();
  }
  // Berlekamp-Massey: c is the connection polynomial, c[0] = 1, a_k = sum_{i=1..L} c_i a_{k-i}.
  std::vector<uint8_t> c(kLength + 1, 0), b(kLength + 1, 0);
  c[0] = b[0] = 1;
  int L = 0, m = 1;
  for (int n = 0; n < kLength; ++n) {
    uint8_t d = a[static_cast<size_t>(n)];
    for (int i = 1; i <= L; ++i) d ^= c[static_cast<size_t>(i)] & a[static_cast<size_t>(n - i)];
    if (!d) {
      ++m;
    } else if (2 * L <= n) {
      const std::vector<uint8_t> t = c;
      for (int i = 0; i + m <= kLength; ++i) c[static_cast<size_t>(i + m)] ^= b[static_cast<size_t>(i)];
      L = n + 1 - L;
      b = t;
      m = 1;
    } else {
      for (int i = 0; i + m <= kLength; ++i) c[static_cast<size_t>(i + m)] ^= b[static_cast<size_t>(i)];
      ++m;
    }
  }
  // The characteristic polynomial is c's reciprocal: P(x) = x^L c(1/x), coefficient of x^i = c_{L-i}.
  std::array<uint64_t, 4> p{};
  if (L != kDegree) return p;  // cannot happen for xoshiro256 (tests check the jumps)
  for (int i = 0; i < kDegree; ++i)
    if (c[static_cast<size_t>(kDegree - i)]) p[static_cast<size_t>(i >> 6)] |= uint64_t{1} << (i & 63);
  return p;
}

// r mod P for r of degree < 512: every set bit i >= 256 is replaced by x^(i-256) * (P - x^256).
void reduce(Poly& r, const std::array<uint64_t, 4>& low) {
  for (int top = 7; top >= 4; --top) {
    // The highest set bit first: P's lower terms shifted under it reach only lower bits.
    while (r[static_cast<size_t>(top)]) {
      const int i = top * 64 + 63 - __builtin_clzll(r[static_cast<size_t>(top)]);
      r[static_cast<size_t>(top)] ^= uint64_t{1} << (i & 63);
      const int shift = i - 256, words = shift >> 6, bits = shift & 63;
      for (int w = 0; w < 4; ++w) {
        r[static_cast<size_t>(w + words)] ^= low[static_cast<size_t>(w)] << bits;
        if (bits) r[static_cast<size_t>(w + words + 1)] ^= low[static_cast<size_t>(w)] >> (64 - bits);
      }
    }
  }
}

// Squaring over GF(2) spreads the bits: coefficient i moves to 2i.
Poly square(const Poly& a) {
  Poly r{};
  for (int i = 0; i < 256; ++i)
    if (bit(a, i)) r[static_cast<size_t>((2 * i) >> 6)] |= uint64_t{1} << ((2 * i) & 63);
  return r;
}

}  // namespace

void Rng::advance(uint64_t n) {
  if (n == 0) return;
  if (n < 256) {  // cheaper stepped
    for (uint64_t i = 0; i < n; ++i) next();
    return;
  }
  static const std::array<uint64_t, 4> low = characteristic_polynomial();
  // x^n mod P, the bits of n from the top: square, then times x for a set bit.
  Poly r{};
  r[0] = 1;
  for (int b = 63 - __builtin_clzll(n); b >= 0; --b) {
    r = square(r);
    reduce(r, low);
    if ((n >> b) & 1) {
      for (int w = 7; w > 0; --w) r[static_cast<size_t>(w)] = (r[static_cast<size_t>(w)] << 1) | (r[static_cast<size_t>(w - 1)] >> 63);
      r[0] <<= 1;
      reduce(r, low);
    }
  }
  // state <- sum_i r_i T^i(state): T^n(state), since P(T) = 0.
  std::array<uint64_t, 4> acc{};
  for (int i = 0; i < 256; ++i) {
    if (bit(r, i))
      for (size_t w = 0; w < 4; ++w) acc[w] ^= s[w];
    next();
  }
  s = acc;
}

}  // namespace moekit
