#include "services/common/tls/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace apogee::tls {
namespace {

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Deleter {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Bio = std::unique_ptr<BIO, BioDeleter>;
using Cert = std::unique_ptr<X509, X509Deleter>;
using Key = std::unique_ptr<EVP_PKEY, KeyDeleter>;

std::string Where(const std::string& flag, const std::string& path) {
  return absl::StrCat(flag, " file \"", path, "\"");
}

absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    const std::string what = absl::StrCat(Where(flag, path), ": ", std::strerror(error));
    if (error == ENOENT) return absl::NotFoundError(what);
    return absl::PermissionDeniedError(what);
  }
  std::stringstream contents;
  contents << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat(Where(flag, path), ": read failed"));
  }
  return contents.str();
}

Bio MemoryBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// The first certificate of a PEM file (a chain or a CA bundle).
absl::StatusOr<Cert> ReadCertificate(const std::string& flag, const std::string& path) {
  auto pem = ReadPem(flag, path);
  if (!pem.ok()) return pem.status();
  Bio bio = MemoryBio(*pem);
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(flag, path),
                     ": no PEM certificate in it (want a \"-----BEGIN CERTIFICATE-----\" block)"));
  }
  return cert;
}

absl::StatusOr<Key> ReadKey(const std::string& flag, const std::string& path) {
  auto pem = ReadPem(flag, path);
  if (!pem.ok()) return pem.status();
  Bio bio = MemoryBio(*pem);
  // An empty passphrase: an encrypted key fails here (gRPC cannot use one)
  // instead of OpenSSL prompting on the terminal.
  Key key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, const_cast<char*>("")));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        Where(flag, path),
        ": no unencrypted PEM private key in it (want a \"-----BEGIN PRIVATE KEY-----\" block)"));
  }
  return key;
}

// A certificate and its key: both readable PEM, and the key is the one the
// certificate was issued for.
absl::Status ValidateIdentity(const std::string& cert_file, const std::string& key_file,
                              const FlagNames& names) {
  if (cert_file.empty() != key_file.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(names.cert, " and ", names.key, " go together: set both or neither (",
                     names.cert, "=\"", cert_file, "\", ", names.key, "=\"", key_file, "\")"));
  }
  if (cert_file.empty()) return absl::OkStatus();
  auto cert = ReadCertificate(names.cert, cert_file);
  if (!cert.ok()) return cert.status();
  auto key = ReadKey(names.key, key_file);
  if (!key.ok()) return key.status();
  const int matches = X509_check_private_key(cert->get(), key->get());
  ERR_clear_error();
  if (matches != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the private key in ", Where(names.key, key_file),
                     " does not match the certificate in ", Where(names.cert, cert_file)));
  }
  return absl::OkStatus();
}

absl::Status ValidateRoots(const std::string& ca_file, const FlagNames& names) {
  if (ca_file.empty()) return absl::OkStatus();
  return ReadCertificate(names.ca, ca_file).status();
}

absl::Status ValidateInterval(absl::Duration interval) {
  if (interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TLS reload interval ", absl::FormatDuration(interval), " is below the minimum of 1s"));
  }
  return absl::OkStatus();
}

unsigned int Seconds(absl::Duration interval) {
  return static_cast<unsigned int>(absl::ToInt64Seconds(interval));
}

}  // namespace

absl::StatusOr<ClientAuth> ParseClientAuth(absl::string_view flag, absl::string_view text) {
  if (text == "none") return ClientAuth::kNone;
  if (text == "request") return ClientAuth::kRequest;
  if (text == "require") return ClientAuth::kRequire;
  return absl::InvalidArgumentError(
      absl::StrCat(flag, "=\"", text, "\" is not one of none, request, require"));
}

absl::Status Validate(const ServerTls& tls, const FlagNames& names) {
  if (!tls.enabled()) {
    if (!tls.key_file.empty() || !tls.ca_file.empty() || tls.client_auth != ClientAuth::kNone) {
      return absl::InvalidArgumentError(absl::StrCat(names.key, ", ", names.ca,
                                                     " and --tls_client_auth need ", names.cert,
                                                     " (TLS is off without a server certificate)"));
    }
    return absl::OkStatus();
  }
  if (tls.key_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(names.cert, " needs ", names.key));
  }
  if (tls.client_auth != ClientAuth::kNone && tls.ca_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls_client_auth=", tls.client_auth == ClientAuth::kRequire ? "require" : "request",
        " needs ", names.ca, " (the CA that signs client certificates)"));
  }
  if (absl::Status s = ValidateInterval(tls.reload_interval); !s.ok()) return s;
  if (absl::Status s = ValidateIdentity(tls.cert_file, tls.key_file, names); !s.ok()) return s;
  return ValidateRoots(tls.ca_file, names);
}

absl::Status Validate(const ClientTls& tls, const FlagNames& names) {
  if (!tls.enabled) return absl::OkStatus();
  if (absl::Status s = ValidateInterval(tls.reload_interval); !s.ok()) return s;
  if (absl::Status s = ValidateIdentity(tls.cert_file, tls.key_file, names); !s.ok()) return s;
  return ValidateRoots(tls.ca_file, names);
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const ServerTls& tls,
                                                                           const FlagNames& names) {
  if (absl::Status s = Validate(tls, names); !s.ok()) return s;
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.key_file, tls.cert_file, tls.ca_file, Seconds(tls.reload_interval));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!tls.ca_file.empty()) options.watch_root_certs();
  switch (tls.client_auth) {
    case ClientAuth::kNone:
      options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
      break;
    case ClientAuth::kRequest:
      options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
      break;
    case ClientAuth::kRequire:
      options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
      break;
  }
  return grpc::experimental::TlsServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const ClientTls& tls, const FlagNames& names) {
  if (absl::Status s = Validate(tls, names); !s.ok()) return s;
  if (!tls.enabled) return grpc::InsecureChannelCredentials();
  grpc::experimental::TlsChannelCredentialsOptions options;
  // Without a CA file or an identity gRPC uses the system roots.
  if (!tls.ca_file.empty() || !tls.cert_file.empty()) {
    options.set_certificate_provider(
        std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
            tls.key_file, tls.cert_file, tls.ca_file, Seconds(tls.reload_interval)));
    if (!tls.ca_file.empty()) options.watch_root_certs();
    if (!tls.cert_file.empty()) options.watch_identity_key_cert_pairs();
  }
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace apogee::tls
