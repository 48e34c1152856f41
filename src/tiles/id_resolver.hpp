#pragma once

#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace kachel::tiles {

/// Replaces every character other than ASCII letters, digits, `_`, `.` and `-` with one `-`
/// (one per Unicode character of a UTF-8 string), as Martin does.
[[nodiscard]] std::string sanitize_id(std::string_view name);

/// True for ids that would shadow a route (`catalog`, `health`, ...).
[[nodiscard]] bool is_reserved_id(std::string_view id) noexcept;

/// Hands out unique source ids. The same (name, signature) pair always gets the same id; a name
/// taken by another signature, or reserved, becomes `name.1`, `name.2`, ... Thread-safe: the
/// archive reloads and the catalog reloads of the databases share one.
class id_resolver {
  public:
    id_resolver() = default;
    id_resolver(id_resolver&& other) noexcept;
    id_resolver& operator=(id_resolver&& other) noexcept;
    id_resolver(id_resolver const&) = delete;
    id_resolver& operator=(id_resolver const&) = delete;
    ~id_resolver() = default;

    /// \returns the id for `name` (sanitised) owned by `signature`.
    std::string resolve(std::string_view name, std::string_view signature);

  private:
    std::mutex m_mutex;
    std::map<std::string, std::string, std::less<>> m_owner_by_id;
};

} // namespace kachel::tiles
