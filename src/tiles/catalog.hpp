#pragma once

#include "tiles/tile_source.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kachel::tiles {

/// The published sources by id. Built whole, then shared read-only between threads.
class catalog {
  public:
    /// \throws source_error if a source with the same id is already present.
    void add(std::shared_ptr<tile_source const> source);

    /// \returns the source or nullptr. Valid while the catalog lives.
    [[nodiscard]] tile_source const* find(std::string_view id) const noexcept;

    [[nodiscard]] std::size_t size() const noexcept { return m_sources.size(); }

    /// Every source, by id.
    [[nodiscard]] std::vector<std::shared_ptr<tile_source const>> all() const;

    /// The `/catalog` document: `{"tiles": {id: {content_type, description?, name?, attribution?}}}`.
    [[nodiscard]] nlohmann::json to_json() const;

  private:
    std::map<std::string, std::shared_ptr<tile_source const>, std::less<>> m_sources;
};

/// The catalog served now. Archives that appear, change or go make a new catalog, which replaces
/// the old one whole; a request keeps the catalog it started with (and so its sources) until it
/// ends, so it finishes on the version it began on. Thread-safe.
class live_catalog {
  public:
    explicit live_catalog(std::shared_ptr<catalog const> first) : m_current(std::move(first)) {}

    [[nodiscard]] std::shared_ptr<catalog const> current() const noexcept {
        return m_current.load(std::memory_order_acquire);
    }
    void replace(std::shared_ptr<catalog const> next) noexcept {
        m_current.store(std::move(next), std::memory_order_release);
    }

  private:
    std::atomic<std::shared_ptr<catalog const>> m_current;
};

} // namespace kachel::tiles
