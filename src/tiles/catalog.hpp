#pragma once

#include "tiles/tile_source.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace kachel::tiles {

/// The published sources by id. Built once at startup, then shared read-only between threads.
class catalog {
  public:
    /// \throws source_error if a source with the same id is already present.
    void add(std::shared_ptr<tile_source const> source);

    /// \returns the source or nullptr. Valid while the catalog lives.
    [[nodiscard]] tile_source const* find(std::string_view id) const noexcept;

    [[nodiscard]] std::size_t size() const noexcept { return m_sources.size(); }

    /// The `/catalog` document: `{"tiles": {id: {content_type, description?, name?, attribution?}}}`.
    [[nodiscard]] nlohmann::json to_json() const;

  private:
    std::map<std::string, std::shared_ptr<tile_source const>, std::less<>> m_sources;
};

} // namespace kachel::tiles
