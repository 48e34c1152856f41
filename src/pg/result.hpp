#pragma once

#include <libpq-fe.h>

#include "core/c_handle.hpp"

#include <cassert>
#include <memory>
#include <string_view>

namespace kachel::pg {

/// Move-only owner of a PGresult.
class result {
  public:
    result() = default;
    explicit result(PGresult* r) noexcept : m_result(r) {}

    [[nodiscard]] explicit operator bool() const noexcept { return m_result != nullptr; }
    [[nodiscard]] ExecStatusType status() const noexcept { return PQresultStatus(m_result.get()); }
    [[nodiscard]] int num_rows() const noexcept { return PQntuples(m_result.get()); }
    [[nodiscard]] int num_fields() const noexcept { return PQnfields(m_result.get()); }

    /// \pre row < num_rows(), field < num_fields()
    [[nodiscard]] bool is_null(int row, int field) const noexcept {
        assert(row < num_rows() && field < num_fields());
        return PQgetisnull(m_result.get(), row, field) != 0;
    }

    /// The raw value (text, or bytes for binary results); empty for NULL.
    /// Valid while this result lives. \pre row < num_rows(), field < num_fields()
    [[nodiscard]] std::string_view get(int row, int field) const noexcept {
        assert(row < num_rows() && field < num_fields());
        return {PQgetvalue(m_result.get(), row, field),
                static_cast<std::size_t>(PQgetlength(m_result.get(), row, field))};
    }

    /// The libpq handle, valid while this result lives.
    [[nodiscard]] PGresult* native_handle() const noexcept { return m_result.get(); }

    /// The error message of a failed result (libpq's text), empty otherwise.
    [[nodiscard]] std::string_view error_message() const noexcept {
        return PQresultErrorMessage(m_result.get());
    }

    /// The SQLSTATE of a failed result, empty otherwise.
    [[nodiscard]] std::string_view sqlstate() const noexcept {
        char const* s = PQresultErrorField(m_result.get(), PG_DIAG_SQLSTATE);
        return s == nullptr ? std::string_view{} : std::string_view{s};
    }

  private:
    c_handle<PGresult, PQclear> m_result;
};

} // namespace kachel::pg
