#pragma once
// A small HTTP client over libcurl for the tests of the gateway's HTTP/JSON API.
#include <curl/curl.h>
#include <google/protobuf/struct.pb.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>

#include "common/strings.h"
#include "contracts/json.h"
#include "tests/subprocess.h"

namespace sluice::testing {

struct HttpReply {
  long status = 0;
  std::string body;
  std::string content_type;
  std::string location;  // where a redirect points
  std::string headers;   // the response's header lines, as received
};

inline size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One request; `token` null sends no Authorization header. A body goes with
// `content_type` (none when null).
inline HttpReply Request(const std::string& url, const char* token, const char* method = "GET",
                         const std::string* body = nullptr, const char* content_type = "application/json") {
  HttpReply r;
  CURL* curl = curl_easy_init();
  curl_slist* headers = nullptr;
  if (token != nullptr) headers = curl_slist_append(headers, common::Cat("Authorization: Bearer ", token).c_str());
  if (body != nullptr && content_type != nullptr)
    headers = curl_slist_append(headers, common::Cat("Content-Type: ", content_type).c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  if (body != nullptr) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body->size()));
  } else if (std::string_view(method) == "POST" || std::string_view(method) == "DELETE") {
    // No body: "Content-Length: 0", as browsers send for a POST (the server requires it).
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &r.headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  const CURLcode rc = curl_easy_perform(curl);
  EXPECT_EQ(rc, CURLE_OK) << url << ": " << curl_easy_strerror(rc);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  char* type = nullptr;
  curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
  if (type != nullptr) r.content_type = type;
  char* location = nullptr;
  curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &location);
  if (location != nullptr) r.location = location;
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return r;
}

inline std::string Escape(const std::string& s) {
  char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
  std::string out(e);
  curl_free(e);
  return out;
}

// The error object of an error reply.
inline google::protobuf::Struct ErrorOf(const HttpReply& r) {
  google::protobuf::Struct body;
  EXPECT_TRUE(contracts::FromJson(r.body, body).ok()) << r.body;
  return body.fields().at("error").struct_value();
}

inline std::string FirstViolationField(const HttpReply& r) {
  const auto error = ErrorOf(r);
  auto it = error.fields().find("fieldViolations");
  if (it == error.fields().end() || it->second.list_value().values_size() == 0) return "";
  return it->second.list_value().values(0).struct_value().fields().at("field").string_value();
}

// Keeps answers as samples for openapi_check.py: <dir>/<operationId>.<status>.json.
class OpenApiSamples {
 public:
  OpenApiSamples() : dir_(common::Cat(::testing::TempDir(), "/openapi-samples-", getpid(), "-", Counter()++)) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void Keep(const std::string& operation, const HttpReply& r) const {
    std::ofstream(common::Cat(dir_, "/", operation, ".", r.status, ".json")) << r.body;
  }
  // Runs tests/lib/openapi_check.py on gateway/openapi.yaml and the samples: its exit code
  // and output.
  std::pair<int, std::string> Check() const {
    const std::string root = SLUICE_SOURCE_DIR;
    const std::string python = root + "/.cache/venv-clients/bin/python";
    if (access(python.c_str(), X_OK) != 0) return {-1, python + " missing: run bash clients/build.sh python"};
    return RunCaptured(python.c_str(), {root + "/tests/lib/openapi_check.py", root + "/gateway/openapi.yaml", dir_},
                       dir_ + ".log");
  }

 private:
  static int& Counter() {
    static int n = 0;
    return n;
  }
  std::string dir_;
};

}  // namespace sluice::testing
