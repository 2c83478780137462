#pragma once

#include <memory>

namespace sluice::common {

// Deleter that calls a C library's free function; see Handle.
template <class T, void (*F)(T*)>
struct HandleDeleter {
  void operator()(T* p) const noexcept {
    if (p != nullptr) F(p);
  }
};

// Owning RAII wrapper for a C handle: Handle<rd_kafka_t, rd_kafka_destroy>,
// Handle<PGconn, PQfinish>, Handle<PGresult, PQclear>. Move-only, like unique_ptr.
template <class T, void (*F)(T*)>
using Handle = std::unique_ptr<T, HandleDeleter<T, F>>;

}  // namespace sluice::common
