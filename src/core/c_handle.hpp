#pragma once

#include <memory>

namespace kachel {

/// Calls `Free` on a C library's handle: a stateless deleter, so the owner stays pointer-sized.
template <auto Free>
struct c_deleter {
    template <class T>
    void operator()(T* handle) const noexcept {
        Free(handle);
    }
};

/// The one way kachel owns a C handle: `c_handle<PGresult, PQclear>`, `c_handle<X509, X509_free>`.
template <class T, auto Free>
using c_handle = std::unique_ptr<T, c_deleter<Free>>;

} // namespace kachel
