#pragma once

#include <absl/status/statusor.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

namespace sluice::gateway {

// The gateway's TLS files (server certificate chain, its key, optionally the CA client
// certificates must chain to), served so that new files apply to new connections without
// a restart; connections already open keep the certificate they were made with.
//
// gRPC's FileWatcherCertificateProvider does the reloading, but it puts in force whatever
// it reads, a truncated or mismatched file included, and then refuses every handshake. So
// it watches private copies instead (a 0700 directory under the temporary directory):
// Reload checks the files (PEM parses, the key belongs to the certificate, the CA parses)
// and only then copies them there. A bad file is refused and the last good set stays.
//
// Thread-safe. The destructor removes the copies; destroy it after the server that uses
// credentials().
class TlsFiles {
 public:
  struct Paths {
    std::string cert;
    std::string key;
    std::string client_ca;  // empty: no client certificates asked for
  };
  // Fails when the files do not validate or the private directory cannot be made.
  static absl::StatusOr<std::unique_ptr<TlsFiles>> Create(Paths paths);
  ~TlsFiles();
  TlsFiles(const TlsFiles&) = delete;
  TlsFiles& operator=(const TlsFiles&) = delete;

  // Server credentials backed by the private copies; mutual TLS when client_ca is set.
  std::shared_ptr<grpc::ServerCredentials> credentials() const { return credentials_; }

  // Reads the files again. Unchanged contents (unless `force`): false. Changed and valid:
  // copied into force (gRPC picks them up within a second), true. Invalid: the error,
  // naming the file, and nothing changes.
  absl::StatusOr<bool> Reload(bool force);

 private:
  struct Contents {
    std::string cert, key, client_ca;
    bool operator==(const Contents&) const = default;
  };
  explicit TlsFiles(Paths paths) : paths_(std::move(paths)) {}
  absl::StatusOr<Contents> ReadAndCheck() const;
  absl::Status Stage(const Contents& c);

  const Paths paths_;
  std::filesystem::path dir_;
  std::mutex mu_;  // serializes Reload
  Contents in_force_;
  std::shared_ptr<grpc::experimental::FileWatcherCertificateProvider> provider_;
  std::shared_ptr<grpc::ServerCredentials> credentials_;
};

}  // namespace sluice::gateway
