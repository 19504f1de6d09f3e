// wolfssl/options.h must come first: it fixes the struct layouts the other
// wolfCrypt headers declare (the library was built with the same options).
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "base/crypto.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "base/unique_fd.h"

namespace rcp {

namespace {

// wolfCrypt takes word32 lengths; larger inputs go in pieces rather than
// being silently truncated by a cast.
constexpr size_t kMaxPiece = 1u << 30;

// The hash/HMAC calls fail only on bad arguments or a broken build; carrying
// on would produce a wrong digest (an HMAC check could then pass), so stop.
void check(int rc, const char* what) {
  if (rc == 0) return;
  std::fprintf(stderr, "rcp: wolfCrypt %s failed (%d)\n", what, rc);
  std::abort();
}

template <typename Fn>
void in_pieces(std::span<const uint8_t> data, Fn&& fn) {
  while (!data.empty()) {
    const size_t n = std::min(data.size(), kMaxPiece);
    fn(data.data(), static_cast<word32>(n));
    data = data.subspan(n);
  }
}

Hmac* as_hmac(unsigned char* state) { return std::launder(reinterpret_cast<Hmac*>(state)); }
wc_Sha256* as_sha(unsigned char* state) { return std::launder(reinterpret_cast<wc_Sha256*>(state)); }

}  // namespace

Sha256Digest sha256(std::span<const uint8_t> data) {
  wc_Sha256 sha;
  check(wc_InitSha256(&sha), "SHA-256 init");
  in_pieces(data, [&](const uint8_t* p, word32 n) { check(wc_Sha256Update(&sha, p, n), "SHA-256 update"); });
  Sha256Digest out{};
  check(wc_Sha256Final(&sha, out.data()), "SHA-256 final");
  wc_Sha256Free(&sha);
  return out;
}

Sha256Stream::Sha256Stream() {
  static_assert(sizeof(wc_Sha256) <= sizeof(state_), "enlarge Sha256Stream::state_");
  static_assert(alignof(wc_Sha256) <= 16, "Sha256Stream::state_ is not aligned enough for wc_Sha256");
  check(wc_InitSha256(new (state_) wc_Sha256), "SHA-256 init");
}

Sha256Stream::~Sha256Stream() {
  wc_Sha256* s = as_sha(state_);
  wc_Sha256Free(s);
  s->~wc_Sha256();
}

void Sha256Stream::update(std::span<const uint8_t> data) {
  wc_Sha256* s = as_sha(state_);
  in_pieces(data, [&](const uint8_t* p, word32 n) { check(wc_Sha256Update(s, p, n), "SHA-256 update"); });
}

Sha256Digest Sha256Stream::finish() {
  Sha256Digest out{};
  check(wc_Sha256Final(as_sha(state_), out.data()), "SHA-256 final");
  return out;
}

HmacSha256::HmacSha256(std::span<const uint8_t> key) {
  // The Hmac lives in state_ so that crypto.h need not include wolfCrypt.
  static_assert(sizeof(Hmac) <= sizeof(state_), "enlarge HmacSha256::state_");
  static_assert(alignof(Hmac) <= 16, "HmacSha256::state_ is not aligned enough for Hmac");
  Hmac* h = new (state_) Hmac;
  check(wc_HmacInit(h, nullptr, INVALID_DEVID), "HMAC init");
  // An empty key is a valid HMAC key; wolfCrypt wants a non-null pointer only when length > 0.
  check(wc_HmacSetKey(h, WC_SHA256, key.data(), static_cast<word32>(key.size())), "HMAC set key");
}

HmacSha256::~HmacSha256() {
  Hmac* h = as_hmac(state_);
  wc_HmacFree(h);
  h->~Hmac();
}

void HmacSha256::update(std::span<const uint8_t> data) {
  Hmac* h = as_hmac(state_);
  in_pieces(data, [&](const uint8_t* p, word32 n) { check(wc_HmacUpdate(h, p, n), "HMAC update"); });
}

Sha256Digest HmacSha256::finish() {
  Sha256Digest out{};
  check(wc_HmacFinal(as_hmac(state_), out.data()), "HMAC final");
  return out;
}

Sha256Digest hmac_sha256(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  HmacSha256 h(key);
  h.update(data);
  return h.finish();
}

bool constant_time_equal(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  // Lengths are public (tags have a fixed size); only the contents are secret.
  if (a.size() != b.size()) return false;
  // volatile: the compiler may not turn the OR-accumulation into an early exit.
  volatile uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = diff | static_cast<uint8_t>(a[i] ^ b[i]);
  return diff == 0;
}

Result<void> random_bytes(std::span<uint8_t> out) {
  // The kernel CSPRNG directly: no per-call DRBG setup (temp names need this
  // often), no shared state between threads and none that fork() could copy.
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ENOSYS) return urandom_bytes(out.subspan(done));  // Linux < 3.17
    if (n <= 0) return make_error(Errc::io, std::string("getrandom failed: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return {};
}

Result<void> urandom_bytes(std::span<uint8_t> out) {
  if (out.empty()) return {};
  UniqueFd fd(::open("/dev/urandom", O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) return make_error(Errc::io, std::string("/dev/urandom: ") + std::strerror(errno));
  // A character device, not a file a user could have swapped in.
  struct stat st {};
  if (fstat(fd.get(), &st) != 0 || !S_ISCHR(st.st_mode))
    return make_error(Errc::io, "/dev/urandom is not a character device");
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd.get(), out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(Errc::io, "cannot read /dev/urandom");
    done += static_cast<size_t>(n);
  }
  return {};
}

std::string to_hex(std::span<const uint8_t> data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(data.size() * 2);
  for (uint8_t b : data) {
    s += kDigits[b >> 4];
    s += kDigits[b & 0xf];
  }
  return s;
}

namespace {

int hex_nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<std::vector<uint8_t>> from_hex(std::string_view hex) {
  std::vector<uint8_t> out;
  out.reserve(hex.size() / 2);
  int hi = -1;  // first digit of the current byte, or -1 between bytes
  for (char c : hex) {
    if (c == ':') {
      // A separator may only fall between whole bytes ("a:b" is refused).
      if (hi >= 0) return make_error(Errc::invalid_argument, "hex byte split by ':'");
      continue;
    }
    const int v = hex_nibble(c);
    if (v < 0) return make_error(Errc::invalid_argument, "not a hex digit: '" + std::string(1, c) + "'");
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<uint8_t>(hi << 4 | v));
      hi = -1;
    }
  }
  if (hi >= 0) return make_error(Errc::invalid_argument, "odd number of hex digits");
  return out;
}

}  // namespace rcp
