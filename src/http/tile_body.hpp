#pragma once

#include "tiles/tile_cache.hpp"

#include <boost/beast/http/message.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kachel::http {

/// A Beast body that is either text of its own or tile bytes shared with the cache: a cached
/// tile is written to the socket straight from the cache's memory, and a lent one straight from
/// where its source keeps it (in as many pieces as it has), without a copy.
struct tile_body {
    class value_type {
      public:
        value_type() = default;
        value_type& operator=(std::string text) {
            m_own = std::move(text);
            m_shared.reset();
            return *this;
        }
        /// Serves `bytes` (kept alive by this body until the response is gone).
        void share(std::shared_ptr<tiles::tile_bytes const> bytes) {
            m_shared = std::move(bytes);
            m_own.clear();
        }
        [[nodiscard]] std::size_t size() const noexcept { return m_shared ? m_shared->size() : m_own.size(); }
        [[nodiscard]] bool empty() const noexcept { return size() == 0; }
        void clear() noexcept {
            m_shared.reset();
            m_own.clear();
        }
        /// The bytes in pieces, when they are lent; else null.
        [[nodiscard]] std::vector<std::string_view> const* lent_pieces() const noexcept {
            return m_shared && m_shared->lent ? &m_shared->lent->pieces() : nullptr;
        }
        /// The bytes in one piece, when they are not lent.
        [[nodiscard]] std::string_view own() const noexcept {
            return m_shared ? std::string_view{m_shared->data} : std::string_view{m_own};
        }

      private:
        std::shared_ptr<tiles::tile_bytes const> m_shared;
        std::string m_own;
    };

    static std::uint64_t size(value_type const& body) noexcept { return body.size(); }
    // No writer: responses are written by http::server (async_write_response), which sends the
    // bytes or their pieces in one gathered write.
};

} // namespace kachel::http
