#pragma once

#include "core/mapped_file.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kachel::mbtiles {

/// The blobs of one column of an SQLite table with rowids, found by rowid in the file mapped
/// whole into memory and left where the file keeps them: on the row's table page, then on its
/// overflow pages (sqlite.org/fileformat2.html: the database header, table b-trees, cell
/// payloads, overflow pages and the record format). A value is lent in those pieces, without a
/// copy. Only for files nothing can write. Thread-safe: reading changes nothing.
///
/// Every page number, offset and length read from the file is checked against the mapping;
/// anything this does not read (a damaged page, a value that is not a blob) answers nothing,
/// and SQLite reads the value as usual and reports what is wrong.
class mapped_table {
  public:
    /// The table whose b-tree starts at `root_page`, with the blobs in the `column`-th column
    /// of its records (0-based, as declared). Nothing when the file is not one this reads: not
    /// mappable, a database in WAL mode with a WAL file beside it, an unusual header.
    [[nodiscard]] static std::optional<mapped_table> open(std::string const& path, std::uint32_t root_page,
                                                          unsigned column);

    /// The blob in the row `rowid`, in order, appended to `pieces`; false (and `pieces` as it
    /// was) when the row is not found this way, or a page it needs is not at hand
    /// (bytes_at_hand: inside a nowait_scope, a page not in memory).
    [[nodiscard]] bool read(std::int64_t rowid, std::vector<std::string_view>& pieces) const;

    /// What keeps the lent pieces valid.
    [[nodiscard]] std::shared_ptr<mapped_file const> const& file() const noexcept { return m_file; }

  private:
    mapped_table(std::shared_ptr<mapped_file const> file, std::uint32_t page_size, std::uint32_t usable,
                 std::uint32_t root_page, unsigned column) noexcept;

    /// Pages found at hand during one read: [first, end).
    struct at_hand {
        std::uint64_t first = 0;
        std::uint64_t end = 0;
    };
    /// The page numbered `number` (from 1); empty unless it is in the file and at hand. When it
    /// is not known to be, the `run` pages from it on that the read will likely need next are
    /// checked at once, and noted in `known`.
    [[nodiscard]] std::span<unsigned char const> page(std::uint64_t number, std::uint64_t run,
                                                      at_hand& known) const noexcept;
    /// The blob of a cell's payload of `size` bytes at `start` on the table page `pg` (its
    /// usable bytes), appended to `pieces`.
    [[nodiscard]] bool read_payload(std::span<unsigned char const> pg, std::size_t start, std::uint64_t size,
                                    std::vector<std::string_view>& pieces, at_hand& known) const;

    std::shared_ptr<mapped_file const> m_file;
    std::uint64_t m_page_count;
    std::uint32_t m_page_size;
    std::uint32_t m_usable; ///< the page size without the bytes reserved at the end of each page
    std::uint32_t m_root;
    unsigned m_column;
};

} // namespace kachel::mbtiles
