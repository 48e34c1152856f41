#include "app/copier.hpp"

#include "app/archives.hpp"
#include "app/sources.hpp"
#include "core/error.hpp"
#include "core/event_loops.hpp"
#include "http/compression.hpp"
#include "http/conditional.hpp"
#include "http/query_params.hpp"
#include "http/tile_fetch.hpp"
#include "mbtiles/mbtiles_writer.hpp"
#include "pmtiles/pmtiles_writer.hpp"
#include "tiles/tile_format.hpp"
#include "tiles/tilejson.hpp"

#include "tiles/blocking_read.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#ifndef KACHEL_VERSION
#define KACHEL_VERSION "0.0.0"
#endif

namespace kachel::app {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

enum class archive_kind { mbtiles, pmtiles };

archive_kind output_kind(config::copy_options const& o) {
    if (o.output_format) {
        return *o.output_format == "pmtiles" ? archive_kind::pmtiles : archive_kind::mbtiles;
    }
    if (o.output_file.ends_with(".pmtiles")) {
        return archive_kind::pmtiles;
    }
    if (o.output_file.ends_with(".mbtiles")) {
        return archive_kind::mbtiles;
    }
    throw config_error{
        fmt_error("--output-file {} ends neither in .mbtiles nor in .pmtiles: rename it, or say "
                  "which with --output-format mbtiles|pmtiles",
                  o.output_file)};
}

/// What can be checked before any connection: the output's directory can be written, and an
/// output that exists is allowed to be written into.
void check_output(config::copy_options const& o, archive_kind kind) {
    fs::path const path{o.output_file};
    auto const dir = path.has_parent_path() ? path.parent_path() : fs::path{"."};
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        throw config_error{fmt_error("--output-file {}: the directory {} does not exist; create it first",
                                     o.output_file, dir.string())};
    }
    if (::access(dir.c_str(), W_OK) != 0) {
        throw config_error{fmt_error("--output-file {}: cannot write in {}: {}; choose a directory you can "
                                     "write to",
                                     o.output_file, dir.string(), std::strerror(errno))};
    }
    if (!fs::exists(path, ec)) {
        return;
    }
    if (fs::is_directory(path, ec)) {
        throw config_error{fmt_error("--output-file {} is a directory; give a file name", o.output_file)};
    }
    if (::access(path.c_str(), W_OK) != 0) {
        throw config_error{fmt_error("--output-file {} exists and cannot be written: {}", o.output_file,
                                     std::strerror(errno))};
    }
    if (fs::file_size(path, ec) == 0) {
        return;
    }
    if (kind == archive_kind::pmtiles) {
        if (o.on_duplicate != mbtiles::on_duplicate::override) {
            throw config_error{
                fmt_error("--output-file {} exists; a PMTiles archive is written whole, so give "
                          "--on-duplicate override to replace it, or another name",
                          o.output_file)};
        }
    } else if (!o.on_duplicate) {
        throw config_error{fmt_error(
            "--output-file {} exists; say what happens to the tiles it holds with --on-duplicate: override "
            "(replace them), ignore (keep them; this also continues an interrupted copy) or abort (stop at "
            "the "
            "first tile already there)",
            o.output_file)};
    }
}

/// Sizes of the tiles of one zoom: count, total, extremes, and a histogram of 8 buckets per
/// doubling for the median (within 9 %), so that memory does not grow with the tiles.
struct size_stats {
    std::uint64_t count = 0;
    std::uint64_t total = 0;
    std::uint64_t min = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t max = 0;
    static constexpr std::size_t bucket_count = 512;
    std::array<std::uint64_t, bucket_count> buckets{};

    static std::size_t bucket_of(std::uint64_t size) noexcept {
        auto const b = static_cast<std::size_t>(std::log2(static_cast<double>(size) + 1.0) * 8.0);
        return std::min<std::size_t>(b, bucket_count - 1);
    }
    void add(std::uint64_t size) noexcept {
        ++count;
        total += size;
        min = std::min(min, size);
        max = std::max(max, size);
        ++buckets[bucket_of(size)];
    }
    [[nodiscard]] std::uint64_t median() const noexcept {
        std::uint64_t seen = 0;
        for (std::size_t b = 0; b < buckets.size(); ++b) {
            seen += buckets[b];
            if (2 * seen >= count) {
                // The bucket's middle, kept within the extremes.
                auto const mid = std::exp2((static_cast<double>(b) + 0.5) / 8.0) - 1.0;
                return std::clamp(static_cast<std::uint64_t>(mid), min, max);
            }
        }
        return max;
    }
};

std::string human_bytes(std::uint64_t bytes) {
    if (bytes < 10'000) {
        return fmt::format("{} B", bytes);
    }
    if (bytes < 10'000'000) {
        return fmt::format("{:.1f} kB", static_cast<double>(bytes) / 1e3);
    }
    if (bytes < 10'000'000'000) {
        return fmt::format("{:.1f} MB", static_cast<double>(bytes) / 1e6);
    }
    return fmt::format("{:.1f} GB", static_cast<double>(bytes) / 1e9);
}

std::string human_duration(double seconds) {
    auto const s = static_cast<std::uint64_t>(seconds);
    if (s >= 3600) {
        return fmt::format("{}h{:02}m", s / 3600, s / 60 % 60);
    }
    if (s >= 60) {
        return fmt::format("{}m{:02}s", s / 60, s % 60);
    }
    return fmt::format("{}s", s);
}

/// Why the copy stopped early.
enum class stop_reason { none, failed, interrupted };

/// One copy: the sources, the tiles to make, the writer, the workers and the figures.
struct copy_run {
    copy_run(config::settings s, config::copy_options o)
        : settings(std::move(s)), options(std::move(o)), kind(output_kind(options)),
          loops(settings.workers != 0 ? settings.workers
                                      : std::max(1U, std::thread::hardware_concurrency())) {}

    config::settings settings;
    config::copy_options options;
    archive_kind kind;
    event_loops loops;
    postgis::readiness ready;
    asio::thread_pool blocking{std::max(2U, std::thread::hardware_concurrency())};
    /// The one thread that writes the archive (SQLite, files): never an event loop.
    asio::thread_pool writing{1};
    std::shared_ptr<tiles::catalog> catalog = std::make_shared<tiles::catalog>();
    std::unique_ptr<archive_set> archives;

    // What to copy, settled before the first tile.
    std::vector<tiles::tile_source const*> sources;
    std::string source_ids; ///< as given to --source, or the only source's id
    std::string content_type;
    bool compressible = true;
    tiles::encoding encoding = tiles::encoding::identity;
    std::string query_json; ///< for sources that take the query
    std::optional<tiles::tile_walk> walk;
    std::uint64_t total = 0;
    std::size_t concurrency = 1;
    std::size_t window = 0; ///< PMTiles: how far ahead of the oldest unwritten tile workers may go

    // The writers, used on the writing thread only.
    std::unique_ptr<mbtiles::mbtiles_writer> mbtiles_out;
    std::unique_ptr<pmtiles::pmtiles_writer> pmtiles_out;
    bool resuming = false; ///< an MBTiles file with tiles, on-duplicate ignore: skip what it has
    std::map<std::uint64_t, std::pair<tile_coord, std::optional<std::string>>> pending; ///< PMTiles order
    std::uint64_t since_commit = 0;
    std::chrono::steady_clock::time_point last_commit = std::chrono::steady_clock::now();
    std::array<size_stats, max_zoom + 1> by_zoom{};

    // Shared between threads.
    std::mutex take_mutex;
    std::uint64_t next_seq = 0;             ///< under take_mutex
    std::atomic<std::uint64_t> done{0};     ///< tiles made or skipped, written or not
    std::atomic<std::uint64_t> in_order{0}; ///< PMTiles: tiles up to here are with the writer
    std::atomic<std::uint64_t> written{0};
    std::atomic<std::uint64_t> empty{0};
    std::atomic<std::uint64_t> skipped{0}; ///< already in the file
    std::atomic<std::uint64_t> bytes{0};
    std::atomic<std::uint32_t> zoom{0};
    std::atomic<bool> stopping{false};
    /// Statement cancellations under way (on the main loop): the loops must outlive them.
    int cancelling = 0;
    std::mutex failure_mutex;
    stop_reason reason = stop_reason::none; ///< under failure_mutex
    std::string failure;                    ///< under failure_mutex
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    /// When the last tile was handed to the writer (before agg_tiles_hash or the directories).
    std::optional<std::chrono::steady_clock::time_point> tiles_done;

    void fail(stop_reason why, std::string what) {
        std::lock_guard const lock{failure_mutex};
        if (reason == stop_reason::none) {
            reason = why;
            failure = std::move(what);
        }
        stopping = true;
    }

    [[nodiscard]] stop_reason stopped_why() {
        std::lock_guard const lock{failure_mutex};
        return reason;
    }

    /// Runs `work` on the writing thread and resumes the caller on its own executor.
    template <class TWork>
    asio::awaitable<void> on_writer(TWork work) {
        co_await asio::co_spawn(
            writing.get_executor(),
            [work = std::move(work)]() mutable -> asio::awaitable<void> {
                work();
                co_return;
            },
            tiles::uncancellable());
    }

    /// Picks the sources, the encoding, the zooms, the area and how many tiles to make at once.
    void settle();
    /// The sources of --source (or the only one), their format, the encoding and the query.
    void pick_sources();
    /// The zooms of -z, else --min-zoom/--max-zoom, else the sources' (`merged`: their TileJSON),
    /// without those no source serves.
    [[nodiscard]] std::vector<std::uint32_t> zooms_to_copy(nlohmann::json const& merged) const;
    /// The --bbox boxes, else the sources' bounds, else the world.
    [[nodiscard]] std::vector<tiles::lonlat_box> area_to_copy(nlohmann::json const& merged) const;
    /// The metadata of a new archive: the sources' TileJSON, the zooms and area copied, kachel-cp
    /// as generator, and --set-meta.
    [[nodiscard]] nlohmann::json merged_tilejson() const;
    void write_fresh_metadata();

    asio::awaitable<void> run();
    asio::awaitable<void> worker();
    asio::awaitable<void> progress();
    asio::awaitable<std::optional<std::string>> make_tile(tile_coord coord);
    void deliver(std::uint64_t seq, tile_coord coord, std::optional<std::string> tile);
    void store(tile_coord coord, std::string const& tile);
    void finish();
    void print_summary(std::FILE* out) const;
};

/// The catalog's ids, for messages.
std::string ids_of(tiles::catalog const& catalog) {
    std::vector<std::string> names;
    for (auto const& s : catalog.all()) {
        names.push_back(s->id());
    }
    return fmt::format("{}", fmt::join(names, ", "));
}

void copy_run::pick_sources() {
    if (options.source) {
        source_ids = *options.source;
    } else if (catalog->size() == 1) {
        source_ids = catalog->all().front()->id();
    } else {
        throw config_error{
            fmt_error("There are {} sources; say which to copy with --source ID (or ID1,ID2 for a "
                      "composite): {}",
                      catalog->size(), ids_of(*catalog))};
    }
    auto const& ids = source_ids;
    std::size_t at = 0;
    while (at <= ids.size()) {
        auto const end = std::min(ids.find(',', at), ids.size());
        auto const id = ids.substr(at, end - at);
        auto const* source = catalog->find(id);
        if (source == nullptr) {
            throw config_error{
                fmt_error("--source: there is no source {}; the sources are: {}", id, ids_of(*catalog))};
        }
        if (!sources.empty() && source->content_type() != sources.front()->content_type()) {
            throw config_error{fmt_error("--source {}: {} makes {} tiles and {} makes {}: a composite joins "
                                         "sources of one format",
                                         ids, sources.front()->id(), sources.front()->content_type(), id,
                                         source->content_type())};
        }
        sources.push_back(source);
        at = end + 1;
    }
    content_type = sources.front()->content_type();
    compressible = http::is_compressible(content_type);
    if (sources.size() > 1 && !tiles::is_vector_format(content_type)) {
        throw config_error{
            fmt_error("--source {}: {} tiles cannot be joined into one; copy the sources one by one", ids,
                      content_type)};
    }
    if (kind == archive_kind::pmtiles && !pmtiles::tile_type_code(content_type)) {
        throw config_error{fmt_error("--source {} makes {} tiles, which PMTiles has no type for; write an "
                                     "MBTiles file instead",
                                     ids, content_type)};
    }
    auto const chosen = http::negotiate_encoding(options.encoding, tiles::encoding::identity, compressible,
                                                 settings.http.preferred_encoding);
    if (!chosen) {
        throw config_error{fmt_error("--encoding '{}' accepts no encoding kachel has: give gzip, br, zstd or "
                                     "identity",
                                     options.encoding)};
    }
    encoding = *chosen;
    if (std::any_of(sources.begin(), sources.end(), [](auto const* s) { return s->accepts_query(); })) {
        query_json = http::query_to_json(options.url_query)
                         .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
}

std::vector<std::uint32_t> copy_run::zooms_to_copy(nlohmann::json const& merged) const {
    // The list, else the range, else the sources' own.
    std::vector<std::uint32_t> zooms = options.zoom_levels;
    if (zooms.empty()) {
        auto const zooms_of_sources = tiles::zooms_of(merged);
        auto const low = options.min_zoom
                             ? *options.min_zoom
                             : static_cast<std::uint32_t>(std::max(0, zooms_of_sources.min.value_or(0)));
        std::uint32_t high = 0;
        if (options.max_zoom) {
            high = *options.max_zoom;
        } else if (zooms_of_sources.max && *zooms_of_sources.max <= 16) {
            high = static_cast<std::uint32_t>(*zooms_of_sources.max);
        } else {
            throw config_error{fmt_error("Say how deep to copy with --max-zoom (or -z): the sources go {}, "
                                         "and each zoom has four times the tiles of the one above",
                                         zooms_of_sources.max
                                             ? fmt::format("to zoom {}", *zooms_of_sources.max)
                                             : std::string{"to every zoom"})};
        }
        if (low > high) {
            throw config_error{fmt_error("--min-zoom {} is above the highest zoom to copy, {}", low, high)};
        }
        for (auto z = low; z <= high; ++z) {
            zooms.push_back(z);
        }
    }
    std::vector<std::uint32_t> served;
    for (auto const z : zooms) {
        if (std::any_of(sources.begin(), sources.end(),
                        [z](auto const* s) { return s->zooms().contains(z); })) {
            served.push_back(z);
        } else {
            spdlog::warn("Zoom {} is outside the zooms of {}: no tiles there", z, source_ids);
        }
    }
    return served;
}

std::vector<tiles::lonlat_box> copy_run::area_to_copy(nlohmann::json const& merged) const {
    // The boxes given, else the sources' bounds, else the world.
    if (!options.boxes.empty()) {
        return options.boxes;
    }
    if (auto const b = merged.find("bounds"); b != merged.end() && b->is_array() && b->size() == 4) {
        tiles::lonlat_box const box{(*b)[0].get<double>(), (*b)[1].get<double>(), (*b)[2].get<double>(),
                                    (*b)[3].get<double>()};
        if (box.west < box.east && box.south < box.north) {
            return {box};
        }
    }
    return {tiles::lonlat_box{}};
}

void copy_run::settle() {
    pick_sources();
    auto const merged = tiles::make_tilejson(sources, tiles::request_origin{});
    walk.emplace(area_to_copy(merged), zooms_to_copy(merged));
    total = walk->count();
    concurrency = options.concurrency.value_or(0);
    if (concurrency == 0) {
        // Enough tiles at once to keep every pooled connection busy.
        std::size_t pooled = 0;
        for (std::size_t i = 0; i < settings.postgres.size(); ++i) {
            pooled += settings.pool_size_for(i);
        }
        concurrency =
            std::max<std::size_t>(pooled, std::size_t{2} * std::max(1U, std::thread::hardware_concurrency()));
    }
    window = std::max<std::size_t>(64, 16 * concurrency);
}

nlohmann::json copy_run::merged_tilejson() const {
    auto tj = tiles::make_tilejson(sources, tiles::request_origin{});
    tj.erase("tiles");
    auto const zooms = walk->zooms();
    if (!zooms.empty()) {
        tj["minzoom"] = zooms.front();
        tj["maxzoom"] = zooms.back();
    }
    if (!options.boxes.empty()) {
        auto united = options.boxes.front();
        for (auto const& b : options.boxes) {
            united = {std::min(united.west, b.west), std::min(united.south, b.south),
                      std::max(united.east, b.east), std::max(united.north, b.north)};
        }
        tj["bounds"] = {united.west, united.south, united.east, united.north};
    }
    return tj;
}

void copy_run::write_fresh_metadata() {
    auto const tj = merged_tilejson();
    auto const text = [&](char const* key) -> std::optional<std::string> {
        auto const it = tj.find(key);
        if (it == tj.end() || it->is_null()) {
            return std::nullopt;
        }
        return it->is_string() ? it->get<std::string>() : it->dump();
    };
    auto const joined = [&](char const* key) -> std::optional<std::string> {
        auto const it = tj.find(key);
        if (it == tj.end() || !it->is_array()) {
            return std::nullopt;
        }
        std::vector<std::string> parts;
        for (auto const& v : *it) {
            // Numbers as short as they are exact: 10, not 10.0.
            parts.push_back(v.is_number() ? fmt::format("{}", v.get<double>()) : v.dump());
        }
        return fmt::format("{}", fmt::join(parts, ","));
    };
    std::vector<std::pair<std::string, std::string>> rows;
    rows.emplace_back("name", text("name").value_or(source_ids));
    for (auto const* key : {"description", "attribution", "version"}) {
        if (auto v = text(key)) {
            rows.emplace_back(key, *v);
        }
    }
    for (auto const* key : {"bounds", "center"}) {
        if (auto v = joined(key)) {
            rows.emplace_back(key, *v);
        }
    }
    for (auto const* key : {"minzoom", "maxzoom"}) {
        if (auto v = text(key)) {
            rows.emplace_back(key, *v);
        }
    }
    rows.emplace_back("format", tiles::format_name(content_type));
    rows.emplace_back("generator", "kachel-cp v" KACHEL_VERSION);
    if (encoding != tiles::encoding::identity) {
        rows.emplace_back("compression", tiles::encoding_token(encoding) == "br"
                                             ? "brotli"
                                             : std::string{tiles::encoding_token(encoding)});
    }
    if (auto const layers = tj.find("vector_layers"); layers != tj.end()) {
        rows.emplace_back("json", nlohmann::json{{"vector_layers", *layers}}.dump());
    }
    mbtiles_out->set_metadata(rows);
}

asio::awaitable<std::optional<std::string>> copy_run::make_tile(tile_coord coord) {
    std::vector<tiles::tile_source const*> serving;
    for (auto const* s : sources) {
        if (s->zooms().contains(coord.z)) {
            serving.push_back(s);
        }
    }
    http::tile_fetch fetch{coord, query_json, options.url_query, nullptr};
    auto const retry_for = settings.postgres.empty()
                               ? std::chrono::milliseconds{30s}
                               : std::chrono::milliseconds{settings.retry_timeout_for(0)};
    auto const give_up = std::chrono::steady_clock::now() + retry_for;
    auto pause = 250ms;
    asio::steady_timer timer{co_await asio::this_coro::executor};
    for (;;) {
        auto results = co_await fetch.get_all(serving);
        std::optional<std::size_t> failed;
        for (std::size_t i = 0; i < results.size(); ++i) {
            if (results[i].error != tiles::tile_errc::none) {
                failed = i;
                break;
            }
        }
        if (!failed) {
            if (serving.size() == 1 && sources.size() == 1) {
                auto plain = std::move(results.front().bytes);
                if (plain->empty()) {
                    co_return std::nullopt;
                }
                auto out = plain;
                if (encoding != tiles::encoding::identity) {
                    out = co_await fetch.encoded(*serving.front(), plain, encoding);
                }
                std::string scratch;
                auto const view = out->contiguous(scratch);
                co_return scratch.empty() ? std::string{view} : std::move(scratch);
            }
            // A composite: the constituents' layers one after the other, as the server joins them.
            std::string body;
            for (auto const& r : results) {
                r.bytes->append_to(body);
            }
            if (body.empty()) {
                co_return std::nullopt;
            }
            if (encoding != tiles::encoding::identity) {
                body = http::compress(body, encoding);
            }
            co_return body;
        }
        auto const& bad = results[*failed];
        bool const transient = bad.error == tiles::tile_errc::unavailable ||
                               bad.error == tiles::tile_errc::upstream ||
                               bad.error == tiles::tile_errc::timeout;
        if (stopping) {
            co_return std::nullopt; // interrupted: the tile is not written
        }
        if (!transient || std::chrono::steady_clock::now() + pause > give_up) {
            fail(stop_reason::failed,
                 fmt::format("Tile {}/{}/{} of {} failed{}: {}", coord.z, coord.x, coord.y,
                             serving[*failed]->id(),
                             transient ? fmt::format(" for {} s", retry_for.count() / 1000) : std::string{},
                             bad.detail));
            co_return std::nullopt;
        }
        spdlog::warn("Tile {}/{}/{} of {}: {}; trying again in {} ms", coord.z, coord.x, coord.y,
                     serving[*failed]->id(), bad.detail, pause.count());
        timer.expires_after(pause);
        co_await timer.async_wait(asio::use_awaitable);
        pause = std::min(pause * 2, std::chrono::milliseconds{5s});
    }
}

void copy_run::store(tile_coord coord, std::string const& tile) {
    if (mbtiles_out) {
        mbtiles_out->add(coord, tile);
        ++since_commit;
        auto const now = std::chrono::steady_clock::now();
        // Transactions of many tiles, yet never much work lost to an interruption.
        if (since_commit >= 2000 || now - last_commit >= 1s) {
            mbtiles_out->commit();
            since_commit = 0;
            last_commit = now;
        }
    } else {
        pmtiles_out->add(tiles::tile_id(coord), tile);
    }
    by_zoom[coord.z].add(tile.size());
    bytes += tile.size();
    ++written;
}

void copy_run::deliver(std::uint64_t seq, tile_coord coord, std::optional<std::string> tile) {
    if (stopping && stopped_why() == stop_reason::failed) {
        return;
    }
    try {
        if (!pmtiles_out) {
            if (tile) {
                store(coord, *tile);
            }
            return;
        }
        // PMTiles stores tiles in tile-id order: a tile made early waits for those before it.
        pending.emplace(seq, std::pair{coord, std::move(tile)});
        while (!pending.empty() && pending.begin()->first == in_order.load()) {
            auto node = pending.extract(pending.begin());
            if (node.mapped().second) {
                store(node.mapped().first, *node.mapped().second);
            }
            ++in_order;
        }
    } catch (std::exception const& e) {
        fail(stop_reason::failed, e.what());
    }
}

asio::awaitable<void> copy_run::worker() {
    auto const executor = co_await asio::this_coro::executor;
    asio::steady_timer timer{executor};
    for (;;) {
        std::optional<tile_coord> coord;
        std::uint64_t seq = 0;
        {
            std::lock_guard const lock{take_mutex};
            if (!stopping) {
                coord = walk->next();
                seq = next_seq++;
            }
        }
        if (!coord) {
            co_return;
        }
        zoom = coord->z;
        // PMTiles: stay within a window of the oldest tile not written yet, so that the tiles
        // waiting for it stay few.
        while (pmtiles_out && seq >= in_order.load() + window && !stopping) {
            timer.expires_after(2ms);
            co_await timer.async_wait(asio::use_awaitable);
        }
        if (stopping) {
            co_return;
        }
        bool have = false;
        if (resuming) {
            co_await on_writer([&] { have = mbtiles_out->has(*coord); });
        }
        std::optional<std::string> tile;
        if (have) {
            ++skipped;
        } else {
            tile = co_await make_tile(*coord);
            if (!tile && !stopping) {
                ++empty;
            }
        }
        co_await on_writer([&, c = *coord] { deliver(seq, c, std::move(tile)); });
        ++done;
    }
}

asio::awaitable<void> copy_run::progress() {
    asio::steady_timer timer{co_await asio::this_coro::executor};
    bool const terminal = ::isatty(STDERR_FILENO) == 1;
    auto const every = terminal ? 500ms : 5s;
    std::uint64_t last_done = 0;
    auto last = std::chrono::steady_clock::now();
    double rate = 0;
    while (!stopping && done < total) {
        timer.expires_after(every);
        co_await timer.async_wait(asio::use_awaitable);
        auto const now = std::chrono::steady_clock::now();
        auto const d = done.load();
        auto const seconds = std::chrono::duration<double>(now - last).count();
        auto const current = seconds > 0 ? static_cast<double>(d - last_done) / seconds : 0.0;
        rate = rate == 0 ? current : 0.7 * rate + 0.3 * current;
        last_done = d;
        last = now;
        auto const share = total == 0 ? 1.0 : static_cast<double>(d) / static_cast<double>(total);
        auto const eta = rate > 0 ? human_duration(static_cast<double>(total - d) / rate) : std::string{"?"};
        if (terminal) {
            constexpr int width = 24;
            auto const filled = static_cast<int>(share * width);
            fmt::print(stderr, "\r[{}{}] {}/{} tiles {:.1f}% | {:.0f} tiles/s | {} | ETA {} | z{}\x1b[K",
                       std::string(static_cast<std::size_t>(filled), '#'),
                       std::string(static_cast<std::size_t>(width - filled), '.'), d, total, 100 * share,
                       rate, human_bytes(bytes), eta, zoom.load());
        } else {
            fmt::print(stderr, "{}/{} tiles ({:.1f}%), {:.0f} tiles/s, {} written, ETA {}, zoom {}\n", d,
                       total, 100 * share, rate, human_bytes(bytes), eta, zoom.load());
        }
        (void)std::fflush(stderr);
    }
    if (terminal) {
        fmt::print(stderr, "\r\x1b[K");
    }
}

void copy_run::finish() {
    auto const why = stopped_why();
    if (mbtiles_out) {
        mbtiles_out->commit();
        if (why != stop_reason::none) {
            return; // no agg_tiles_hash: the file is not complete
        }
        if (!options.metadata.empty()) {
            mbtiles_out->set_metadata(options.metadata);
        }
        if (!options.skip_agg_tiles_hash) {
            auto const hash = mbtiles_out->agg_tiles_hash();
            mbtiles_out->set_metadata({{"agg_tiles_hash", hash}});
        }
        mbtiles_out->commit();
        return;
    }
    if (why != stop_reason::none) {
        return; // the temporary files go with the writer
    }
    auto tj = merged_tilejson();
    pmtiles::archive_description d;
    d.tile_type = *pmtiles::tile_type_code(content_type);
    d.tile_compression = pmtiles::compression_code(encoding);
    if (auto const b = tj.find("bounds"); b != tj.end() && b->is_array() && b->size() == 4) {
        d.min_lon = (*b)[0].get<double>();
        d.min_lat = (*b)[1].get<double>();
        d.max_lon = (*b)[2].get<double>();
        d.max_lat = (*b)[3].get<double>();
    }
    if (auto const c = tj.find("center"); c != tj.end() && c->is_array() && c->size() >= 2) {
        d.center_lon = (*c)[0].get<double>();
        d.center_lat = (*c)[1].get<double>();
        d.center_zoom = c->size() > 2 ? static_cast<std::uint8_t>((*c)[2].get<double>()) : 0;
    } else {
        d.center_lon = (d.min_lon + d.max_lon) / 2;
        d.center_lat = (d.min_lat + d.max_lat) / 2;
        d.center_zoom = static_cast<std::uint8_t>(walk->zooms().empty() ? 0 : walk->zooms().front());
    }
    nlohmann::json meta = nlohmann::json::object();
    for (auto const* key : {"name", "description", "attribution", "version", "vector_layers"}) {
        if (auto const it = tj.find(key); it != tj.end()) {
            meta[key] = *it;
        }
    }
    if (!meta.contains("name")) {
        meta["name"] = source_ids;
    }
    meta["generator"] = "kachel-cp v" KACHEL_VERSION;
    for (auto const& [name, value] : options.metadata) {
        meta[name] = value;
    }
    d.metadata = std::move(meta);
    pmtiles_out->finish(d);
}

void copy_run::print_summary(std::FILE* out) const {
    auto const now = std::chrono::steady_clock::now();
    auto const last_tile = tiles_done.value_or(now);
    auto const seconds = std::chrono::duration<double>(last_tile - started).count();
    fmt::print(out,
               "{} tiles written ({}), {} empty tiles skipped, {} already in the file, in {:.1f} s ({:.0f} "
               "tiles/s); the archive finished {:.1f} s later\n",
               written.load(), human_bytes(bytes), empty.load(), skipped.load(), seconds,
               seconds > 0 ? static_cast<double>(done.load()) / seconds : 0.0,
               std::chrono::duration<double>(now - last_tile).count());
    if (pmtiles_out) {
        fmt::print(out, "PMTiles: {} entries, {} distinct tiles stored ({} duplicates)\n",
                   pmtiles_out->entries(), pmtiles_out->contents(),
                   pmtiles_out->addressed() - pmtiles_out->contents());
    } else if (mbtiles_out && mbtiles_out->file_schema() == mbtiles::schema::normalized) {
        fmt::print(out, "MBTiles (normalized): {} duplicates point at an image stored once\n",
                   mbtiles_out->duplicates());
    }
    fmt::print(out, "{:>4} {:>10} {:>10} {:>10} {:>10} {:>12}\n", "zoom", "tiles", "min", "median", "max",
               "total");
    for (std::size_t z = 0; z < by_zoom.size(); ++z) {
        auto const& s = by_zoom[z];
        if (s.count == 0) {
            continue;
        }
        fmt::print(out, "{:>4} {:>10} {:>10} {:>10} {:>10} {:>12}\n", z, s.count, human_bytes(s.min),
                   human_bytes(s.median()), human_bytes(s.max), human_bytes(s.total));
    }
}

asio::awaitable<void> copy_run::run() {
    auto& ioc = loops.main();
    tiles::id_resolver ids;
    (void)co_await async_publish_databases(settings, ioc.get_executor(), ids, *catalog, ready);
    archives = std::make_unique<archive_set>(settings, blocking.get_executor(), nullptr);
    for (auto& source : archives->open_all(ids)) {
        catalog->add(std::move(source));
    }
    if (catalog->size() == 0) {
        throw config_error{
            "No tile sources found: give a PostgreSQL connection (postgresql://... argument, "
            "DATABASE_URL or the config file's postgres section), or MBTiles or PMTiles files"};
    }
    settle();
    co_await on_writer([this] {
        if (kind == archive_kind::pmtiles) {
            pmtiles_out = std::make_unique<pmtiles::pmtiles_writer>(options.output_file);
            return;
        }
        auto const mode = options.on_duplicate.value_or(mbtiles::on_duplicate::abort);
        mbtiles_out = std::make_unique<mbtiles::mbtiles_writer>(
            options.output_file, options.mbtiles_type.value_or(mbtiles::schema::normalized), mode);
        if (mbtiles_out->had_tiles()) {
            resuming = mode == mbtiles::on_duplicate::ignore;
            mbtiles_out->remove_metadata("agg_tiles_hash"); // set again when this copy ends
        } else {
            write_fresh_metadata();
        }
        mbtiles_out->commit();
    });
    spdlog::info("Copying {} tiles of {} (zooms {}) into {} with {} at once{}", total, source_ids,
                 fmt::join(walk->zooms(), ","), options.output_file, concurrency,
                 resuming ? "; tiles already in the file are kept and not made again" : "");
    started = std::chrono::steady_clock::now(); // the rate is the copy's, not the publishing's
    asio::co_spawn(ioc, progress(), asio::detached);
    auto all_loops = loops.others();
    all_loops.insert(all_loops.begin(), &ioc);
    std::atomic<std::size_t> running{concurrency};
    asio::steady_timer all_done{ioc, std::chrono::steady_clock::time_point::max()};
    for (std::size_t i = 0; i < concurrency; ++i) {
        asio::co_spawn(*all_loops[i % all_loops.size()], worker(),
                       [this, &running, &all_done, &ioc](std::exception_ptr const& e) {
                           if (e) {
                               try {
                                   std::rethrow_exception(e);
                               } catch (std::exception const& x) {
                                   fail(stop_reason::failed, x.what());
                               }
                           }
                           if (--running == 0) {
                               asio::post(ioc, [&all_done] { all_done.cancel(); });
                           }
                       });
    }
    boost::system::error_code ec;
    co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    tiles_done = std::chrono::steady_clock::now();
    co_await on_writer([this] { finish(); });
    asio::steady_timer wait{ioc};
    while (cancelling > 0) {
        wait.expires_after(10ms);
        co_await wait.async_wait(asio::use_awaitable);
    }
}

} // namespace

int run_copy(config::settings settings, config::copy_options options) {
    std::unique_ptr<copy_run> run;
    try {
        auto const kind = output_kind(options);
        check_output(options, kind);
        run = std::make_unique<copy_run>(std::move(settings), std::move(options));
    } catch (error const& e) {
        spdlog::error("{}", e.what());
        return 1;
    }
    auto& r = *run;
    auto& ioc = r.loops.main();
    asio::signal_set signals{ioc, SIGINT, SIGTERM};
    signals.async_wait([&r, &ioc](boost::system::error_code const& ec, int signo) {
        if (ec) {
            return;
        }
        spdlog::warn("Received signal {}: cancelling the running statements and stopping", signo);
        r.fail(stop_reason::interrupted, "interrupted");
        ++r.cancelling;
        asio::co_spawn(
            ioc,
            [&r]() -> asio::awaitable<void> {
                // Again every 100 ms until the workers are done: a statement that starts after a
                // sweep (its connection still being made when the signal came) is cancelled by
                // the next one.
                asio::steady_timer pause{co_await asio::this_coro::executor};
                while (!r.tiles_done) {
                    auto const deadline = std::chrono::steady_clock::now() + 1s;
                    for (auto const& pool : r.ready.pools()) {
                        (void)co_await pool->async_cancel_running(deadline);
                    }
                    pause.expires_after(100ms);
                    co_await pause.async_wait(asio::use_awaitable);
                }
            },
            [&r](std::exception_ptr const&) { --r.cancelling; });
    });
    std::exception_ptr failure;
    asio::co_spawn(ioc, r.run(), [&](std::exception_ptr e) {
        failure = std::move(e);
        signals.cancel();
        ioc.stop();
    });
    r.loops.run_main();
    r.loops.shut_down();
    r.writing.join();
    if (failure) {
        try {
            std::rethrow_exception(failure);
        } catch (std::exception const& e) {
            spdlog::error("{}", e.what());
        }
        return 1;
    }
    auto const why = r.stopped_why();
    bool const mbtiles = r.kind == archive_kind::mbtiles;
    if (why != stop_reason::none) {
        if (why == stop_reason::failed) {
            spdlog::error("{}", r.failure);
        }
        if (mbtiles) {
            spdlog::warn(
                "Stopped after {} of {} tiles. {} keeps every tile written so far; run the same command "
                "with --on-duplicate ignore to continue where it stopped",
                r.done.load(), r.total, r.options.output_file);
        } else {
            spdlog::warn("Stopped after {} of {} tiles; no PMTiles archive was written", r.done.load(),
                         r.total);
        }
        r.print_summary(stdout);
        return why == stop_reason::interrupted ? 130 : 1;
    }
    r.print_summary(stdout);
    spdlog::info("Wrote {}", r.options.output_file);
    return 0;
}

} // namespace kachel::app
