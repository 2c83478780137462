#include "gateway/tls_files.h"

#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <vector>

#include "common/file.h"
#include "common/handle.h"
#include "common/strings.h"

namespace sluice::gateway {
namespace {

namespace fs = std::filesystem;

// How often gRPC re-reads the private copies. They change only when Reload copies a
// checked set there, so this is the delay between that and new connections using it.
constexpr unsigned kProviderRefreshSeconds = 1;

void FreeBio(BIO* b) { BIO_free(b); }
using Bio = common::Handle<BIO, FreeBio>;
using Key = common::Handle<EVP_PKEY, EVP_PKEY_free>;
using Cert = common::Handle<X509, X509_free>;

// The certificates of a PEM bundle; InvalidArgument naming `path` when there is none or
// one does not parse.
absl::StatusOr<std::vector<Cert>> Certificates(const std::string& pem, const std::string& path) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::vector<Cert> out;
  for (;;) {
    X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (x == nullptr) break;
    out.emplace_back(x);
  }
  // The loop ends on "no start line" after the last certificate; anything else is damage.
  const unsigned long err = ERR_peek_last_error();
  ERR_clear_error();
  if (out.empty() || (err != 0 && ERR_GET_REASON(err) != PEM_R_NO_START_LINE))
    return absl::InvalidArgumentError(common::Cat(path, ": not a PEM certificate (bundle)"));
  return out;
}

absl::Status WriteFile(const fs::path& path, const std::string& data) {
  // Written beside, then renamed over: gRPC never reads half a file.
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << data;
    if (!f.good()) return absl::InternalError(common::Cat(tmp.string(), ": cannot write"));
  }
  ::chmod(tmp.c_str(), 0600);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return absl::InternalError(common::Cat(path.string(), ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<TlsFiles>> TlsFiles::Create(Paths paths) {
  std::unique_ptr<TlsFiles> t(new TlsFiles(std::move(paths)));
  auto c = t->ReadAndCheck();
  if (!c.ok()) return c.status();
  std::string dir = (fs::temp_directory_path() / "sluice-gateway-tls-XXXXXX").string();
  if (::mkdtemp(dir.data()) == nullptr)  // mode 0700: the key copy is readable by this user only
    return absl::InternalError(common::Cat("cannot make a private directory under ", fs::temp_directory_path().string(),
                                           " for the TLS files"));
  t->dir_ = dir;
  if (auto s = t->Stage(*c); !s.ok()) return s;
  t->in_force_ = *std::move(c);
  const bool mutual = !t->paths_.client_ca.empty();
  t->provider_ = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      (t->dir_ / "key.pem").string(), (t->dir_ / "cert.pem").string(), mutual ? (t->dir_ / "ca.pem").string() : "",
      kProviderRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions opts(t->provider_);
  opts.watch_identity_key_cert_pairs();
  if (mutual) {
    opts.watch_root_certs();
    opts.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    opts.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  t->credentials_ = grpc::experimental::TlsServerCredentials(opts);
  if (t->credentials_ == nullptr) return absl::InternalError("gRPC refused the TLS server credentials");
  return t;
}

TlsFiles::~TlsFiles() {
  credentials_.reset();
  provider_.reset();  // stops gRPC's reading thread before the files go
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

absl::StatusOr<TlsFiles::Contents> TlsFiles::ReadAndCheck() const {
  Contents c;
  auto cert = common::ReadFile(paths_.cert);
  if (!cert.ok()) return cert.status();
  auto key = common::ReadFile(paths_.key);
  if (!key.ok()) return key.status();
  c.cert = *std::move(cert);
  c.key = *std::move(key);
  auto chain = Certificates(c.cert, paths_.cert);
  if (!chain.ok()) return chain.status();
  Bio bio(BIO_new_mem_buf(c.key.data(), static_cast<int>(c.key.size())));
  Key pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (pkey == nullptr) return absl::InvalidArgumentError(common::Cat(paths_.key, ": not a PEM private key"));
  // A certificate and key from different rotations would fail every handshake.
  if (X509_check_private_key(chain->front().get(), pkey.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(common::Cat(paths_.key, ": does not belong to the certificate in ", paths_.cert));
  }
  if (!paths_.client_ca.empty()) {
    auto ca = common::ReadFile(paths_.client_ca);
    if (!ca.ok()) return ca.status();
    c.client_ca = *std::move(ca);
    if (auto roots = Certificates(c.client_ca, paths_.client_ca); !roots.ok()) return roots.status();
  }
  return c;
}

absl::Status TlsFiles::Stage(const Contents& c) {
  // Each file is replaced by a rename, so gRPC never reads half of one. It reads the key
  // and the certificate one after the other; should that straddle this swap, the pair
  // does not match, and its next read a second later puts the matching pair in force.
  if (!paths_.client_ca.empty())
    if (auto s = WriteFile(dir_ / "ca.pem", c.client_ca); !s.ok()) return s;
  if (auto s = WriteFile(dir_ / "cert.pem", c.cert); !s.ok()) return s;
  return WriteFile(dir_ / "key.pem", c.key);
}

absl::StatusOr<bool> TlsFiles::Reload(bool force) {
  std::lock_guard lock(mu_);
  auto c = ReadAndCheck();
  if (!c.ok()) return c.status();
  if (*c == in_force_ && !force) return false;
  if (auto s = Stage(*c); !s.ok()) return s;
  in_force_ = *std::move(c);
  return true;
}

}  // namespace sluice::gateway
