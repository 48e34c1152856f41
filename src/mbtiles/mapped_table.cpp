#include "mbtiles/mapped_table.hpp"

#include "mbtiles/nowait_vfs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <span>
#include <system_error>

namespace kachel::mbtiles {

namespace {

using bytes = std::span<unsigned char const>;

constexpr unsigned char interior_table_page = 0x05;
constexpr unsigned char leaf_table_page = 0x0D;
/// SQLite's own bound on a b-tree's depth (BTCURSOR_MAX_DEPTH).
constexpr int max_depth = 20;
/// A lent first piece shorter than this goes through SQLite instead (tile_bytes::front).
constexpr std::size_t min_first_piece = 16;

/// A big-endian number of 2 or 4 bytes. \pre at + 2 (4) <= b.size()
std::uint32_t get2(bytes b, std::size_t at) noexcept {
    return (std::uint32_t{b[at]} << 8U) | std::uint32_t{b[at + 1]};
}
std::uint32_t get4(bytes b, std::size_t at) noexcept {
    return (get2(b, at) << 16U) | get2(b, at + 2);
}

/// SQLite's variable-length integer at `at`: its length in bytes (1 to 9), 0 when it would
/// run past the end of `b`.
std::size_t varint(bytes b, std::size_t at, std::uint64_t& out) noexcept {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < 9; ++i) {
        if (at + i >= b.size()) {
            return 0;
        }
        auto const byte = b[at + i];
        if (i == 8) {
            out = (value << 8U) | byte;
            return 9;
        }
        value = (value << 7U) | (byte & 0x7FU);
        if ((byte & 0x80U) == 0) {
            out = value;
            return i + 1;
        }
    }
    return 0;
}

/// The bytes a record's column of serial type `type` takes; nothing for the reserved types.
std::optional<std::uint64_t> serial_size(std::uint64_t type) noexcept {
    constexpr std::array<std::uint8_t, 10> fixed{0, 1, 2, 3, 4, 6, 8, 8, 0, 0};
    if (type < fixed.size()) {
        return fixed.at(type);
    }
    if (type < 12) {
        return std::nullopt;
    }
    return (type - 12 - type % 2) / 2; // a blob when even, a text when odd
}

std::string_view chars(bytes b) noexcept {
    // NOLINTNEXTLINE(*-reinterpret-cast): the same bytes, as characters
    return {reinterpret_cast<char const*>(b.data()), b.size()};
}

} // namespace

mapped_table::mapped_table(std::shared_ptr<mapped_file const> file, std::uint32_t page_size,
                           std::uint32_t usable, std::uint32_t root_page, unsigned column) noexcept
    : m_file(std::move(file)), m_page_count(m_file->size() / page_size), m_page_size(page_size),
      m_usable(usable), m_root(root_page), m_column(column) {}

std::optional<mapped_table> mapped_table::open(std::string const& path, std::uint32_t root_page,
                                               unsigned column) {
    int const fd =
        ::open(path.c_str(), O_RDONLY | O_CLOEXEC); // NOLINT(cppcoreguidelines-pro-type-vararg): POSIX
    if (fd < 0) {
        return std::nullopt;
    }
    struct stat st {};
    std::shared_ptr<mapped_file const> file;
    constexpr off_t header_size = 100;
    if (::fstat(fd, &st) == 0 && st.st_size >= header_size) {
        file = mapped_file::map(fd, static_cast<std::uint64_t>(st.st_size));
    }
    ::close(fd);
    if (!file) {
        return std::nullopt;
    }
    auto const header_chars = file->bytes(0, header_size);
    // NOLINTNEXTLINE(*-reinterpret-cast): the same bytes, unsigned
    bytes const header{reinterpret_cast<unsigned char const*>(header_chars.data()), header_chars.size()};
    constexpr std::string_view magic{"SQLite format 3\0", 16};
    if (header_chars.substr(0, magic.size()) != magic) {
        return std::nullopt;
    }
    std::uint32_t page_size = get2(header, 16);
    if (page_size == 1) {
        page_size = 65536;
    }
    if (page_size < 512 || page_size > 65536 || (page_size & (page_size - 1)) != 0) {
        return std::nullopt;
    }
    auto const usable = page_size - header[20];
    constexpr std::uint32_t min_usable = 480;
    if (usable < min_usable) {
        return std::nullopt;
    }
    // In WAL mode, pages newer than the file's may wait in the WAL file: only SQLite reads those.
    constexpr unsigned char wal_mode = 2;
    if (header[18] == wal_mode || header[19] == wal_mode) {
        std::error_code ec;
        auto const wal = std::filesystem::file_size(path + "-wal", ec);
        if (!ec && wal > 0) {
            return std::nullopt;
        }
    }
    if (root_page == 0 || root_page > file->size() / page_size) {
        return std::nullopt;
    }
    return mapped_table{std::move(file), page_size, usable, root_page, column};
}

std::span<unsigned char const> mapped_table::page(std::uint64_t number, std::uint64_t run,
                                                  at_hand& known) const noexcept {
    if (number == 0 || number > m_page_count) {
        return {};
    }
    auto const text = m_file->bytes((number - 1) * m_page_size, m_page_size);
    if (number < known.first || number >= known.end) {
        // Overflow pages mostly follow one another: the rest of a value's are checked at once.
        auto const pages = std::clamp<std::uint64_t>(run, 1, m_page_count - number + 1);
        auto const found = bytes_at_hand(text.data(), m_page_size, pages * m_page_size);
        if (found == 0) {
            return {};
        }
        known = {number, number + found / m_page_size};
    }
    // NOLINTNEXTLINE(*-reinterpret-cast): the same bytes, unsigned
    return {reinterpret_cast<unsigned char const*>(text.data()), text.size()};
}

bool mapped_table::read(std::int64_t rowid, std::vector<std::string_view>& pieces) const {
    std::uint64_t number = m_root;
    at_hand known;
    for (int depth = 0; depth < max_depth; ++depth) {
        auto const whole = page(number, 1, known);
        if (whole.empty()) {
            return false;
        }
        auto const pg = whole.first(m_usable); // cells never reach the reserved bytes
        std::size_t const head = number == 1 ? 100 : 0;
        auto const type = pg[head];
        if (type != interior_table_page && type != leaf_table_page) {
            return false;
        }
        bool const leaf = type == leaf_table_page;
        std::size_t const pointers = head + (leaf ? 8 : 12);
        std::size_t const cells = get2(pg, head + 3);
        if (pointers + 2 * cells > pg.size()) {
            return false;
        }
        // The key of cell `i`, and where its payload starts (a leaf's cell): the payload's size,
        // then the rowid; an interior cell: its left child's page number, then the key.
        std::uint64_t payload_size = 0;
        std::size_t payload_at = 0;
        auto const key_of = [&](std::size_t i, std::int64_t& key) {
            std::size_t at = get2(pg, pointers + 2 * i);
            if (leaf) {
                auto const n = varint(pg, at, payload_size);
                if (n == 0) {
                    return false;
                }
                at += n;
            } else {
                at += 4;
            }
            std::uint64_t value = 0;
            auto const n = varint(pg, at, value);
            payload_at = at + n;
            key = static_cast<std::int64_t>(value);
            return n != 0;
        };
        // The first cell whose key is at least `rowid`.
        std::size_t low = 0;
        std::size_t high = cells;
        while (low < high) {
            auto const mid = low + (high - low) / 2;
            std::int64_t key = 0;
            if (!key_of(mid, key)) {
                return false;
            }
            if (key < rowid) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        if (!leaf) {
            // A child holds the keys up to its cell's; the right-most child the ones above all.
            std::size_t const child_at = low == cells ? head + 8 : get2(pg, pointers + 2 * low);
            if (child_at + 4 > pg.size()) {
                return false;
            }
            number = get4(pg, child_at);
            continue;
        }
        std::int64_t key = 0;
        if (low == cells || !key_of(low, key) || key != rowid) {
            return false;
        }
        return read_payload(pg, payload_at, payload_size, pieces, known);
    }
    return false;
}

bool mapped_table::read_payload(std::span<unsigned char const> pg, std::size_t start, std::uint64_t size,
                                std::vector<std::string_view>& pieces, at_hand& known) const {
    // How much of the payload the table page keeps; the rest is on overflow pages.
    std::uint64_t const usable = m_usable;
    std::uint64_t const most = usable - 35;
    std::uint64_t local = size;
    if (size > most) {
        std::uint64_t const least = (usable - 12) * 32 / 255 - 23;
        std::uint64_t const spill = least + (size - least) % (usable - 4);
        local = spill <= most ? spill : least;
    }
    bool const overflows = local < size;
    if (start + local + (overflows ? 4 : 0) > pg.size()) {
        return false;
    }
    auto const here = pg.subspan(start, local);
    std::uint64_t next_page = overflows ? get4(pg, start + local) : 0;

    // The record: a header (its size, then each column's serial type), then the values.
    std::uint64_t header_size = 0;
    auto const n = varint(here, 0, header_size);
    if (n == 0 || header_size < n || header_size > here.size()) {
        return false;
    }
    auto const header = here.first(header_size);
    std::size_t at = n;
    std::uint64_t offset = header_size; // of the column's value in the payload
    std::uint64_t type = 0;
    for (unsigned column = 0;; ++column) {
        auto const m = at < header.size() ? varint(header, at, type) : 0;
        if (m == 0) {
            return false; // fewer columns (one added since this row was written): SQLite knows
        }
        at += m;
        if (column == m_column) {
            break;
        }
        auto const skip = serial_size(type);
        if (!skip) {
            return false;
        }
        offset += *skip;
    }
    if (type < 12 || type % 2 != 0) {
        return false; // not a blob
    }
    std::uint64_t const length = (type - 12) / 2;
    std::uint64_t const per_page = usable - 4; // an overflow page: the next one's number, then bytes
    // A chain can hold no more pages than the file: a damaged size or chain ends the read.
    std::uint64_t const hops = std::min(size / per_page + 1, m_page_count);
    if (offset + length > size || length / per_page > hops) {
        return false;
    }

    auto const before = pieces.size();
    auto const give_up = [&] {
        pieces.resize(before);
        return false;
    };
    pieces.reserve(before + 1 + length / per_page + 1);
    std::uint64_t done = 0;
    if (offset < local && length > 0) {
        done = std::min(length, local - offset);
        pieces.push_back(chars(here.subspan(offset, done)));
    }
    std::uint64_t position = local; // where in the payload the next overflow page's bytes start
    for (std::uint64_t hop = 0; done < length; ++hop) {
        auto const left = (offset + length - position + per_page - 1) / per_page; // pages still needed
        auto const over = hop < hops ? page(next_page, left, known) : std::span<unsigned char const>{};
        if (over.empty()) {
            return give_up();
        }
        auto const at_value = offset + done;
        if (at_value < position + per_page) {
            auto const from = at_value - position;
            auto const take = std::min(per_page - from, length - done);
            pieces.push_back(chars(over.subspan(4 + from, take)));
            done += take;
        }
        position += per_page;
        next_page = get4(over, 0);
    }
    if (pieces.size() - before > 1 && pieces[before].size() < min_first_piece) {
        return give_up();
    }
    return true;
}

} // namespace kachel::mbtiles
