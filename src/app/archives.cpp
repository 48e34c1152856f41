#include "app/archives.hpp"

#include "core/error.hpp"
#include "mbtiles/mbtiles_source.hpp"
#include "pmtiles/pmtiles_source.hpp"
#include "remote/http_client.hpp"
#include "tiles/archive_paths.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>

namespace kachel::app {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

/// One archive being served: its id, what its file was when opened, and its source.
struct open_archive {
    std::string id;
    std::string identity;
    std::shared_ptr<tiles::tile_source const> source;
};

/// Device, inode, size and modification time of a local file: a replaced or rewritten file has
/// another. Empty when the file cannot be read (gone). URLs are always the same.
std::string identity_of(std::string const& path) {
    if (tiles::is_http_url(path)) {
        return "url";
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return {};
    }
    return fmt::format("{}:{}:{}:{}.{}", st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec,
                       st.st_mtim.tv_nsec);
}

std::string canonical_of(std::string const& path) {
    if (tiles::is_http_url(path)) {
        return path;
    }
    std::error_code ec;
    auto canonical = fs::weakly_canonical(path, ec);
    return ec ? path : canonical.string();
}

/// The client that reads PMTiles archives at URLs, set as the `pmtiles` section says.
std::shared_ptr<remote::http_client> archive_client(tiles::remote_archive_settings const& given,
                                                    asio::any_io_executor const& blocking) {
    remote::client_options options;
    options.ca_file = given.ssl_root_cert;
    options.verify = !given.allow_invalid_certificates;
    if (!options.verify) {
        spdlog::warn(
            "pmtiles.allow_invalid_certificates is true: remote archives are read without checking "
            "their servers' certificates, so anyone on the network path can change the tiles served");
    }
    options.timeout = given.timeout.value_or(options.timeout);
    options.connect_timeout = given.connect_timeout.value_or(options.connect_timeout);
    options.idle_timeout = given.pool_idle_timeout.value_or(options.idle_timeout);
    options.max_idle_per_origin = given.pool_max_idle_per_host.value_or(options.max_idle_per_origin);
    return std::make_shared<remote::http_client>(blocking, std::move(options));
}

/// What a directory watch looks for: archives by extension, or files by name.
struct watched_dir {
    fs::path dir;
    std::set<std::string> extensions;
    std::set<std::string> names;

    [[nodiscard]] bool wants(std::string const& name) const {
        return names.contains(name) || std::any_of(extensions.begin(), extensions.end(),
                                                   [&](std::string const& e) { return name.ends_with(e); });
    }
};

/// How long the files must stay quiet before a reload: a burst of events makes one reload.
constexpr std::chrono::milliseconds quiet_time{200};

} // namespace

struct archive_set::state : std::enable_shared_from_this<state> {
    state(config::settings const& settings, asio::any_io_executor executor, tiles::tile_cache* shared_cache)
        : mbtiles(settings.mbtiles), pmtiles(settings.pmtiles), on_invalid(settings.on_invalid),
          cache_size_mb(settings.cache.size_mb), blocking(std::move(executor)), cache(shared_cache) {}

    tiles::archive_config mbtiles;
    tiles::archive_config pmtiles;
    postgis::invalid_policy on_invalid;
    std::int64_t cache_size_mb;
    asio::any_io_executor blocking;
    tiles::tile_cache* cache;
    std::shared_ptr<remote::http_client> client;
    std::size_t directory_share = 0; ///< bytes of PMTiles directory cache per archive

    /// By kind and canonical path. Touched at startup, then on the reload thread only.
    std::map<std::string, open_archive> open;

    // Watching.
    asio::thread_pool reload{1};
    std::optional<asio::posix::stream_descriptor> inotify;
    std::optional<asio::steady_timer> quiet;
    std::optional<asio::steady_timer> recheck; ///< when the remote archives are asked again
    bool rechecking = false;                   ///< until stop
    bool waiting = false;
    std::map<int, watched_dir> dirs;
    std::set<std::string> writing; ///< files open for writing now (canonical), on the main loop
    std::array<char, std::size_t{64} * 1024> events{};
    std::shared_ptr<tiles::live_catalog> live;
    tiles::id_resolver* ids = nullptr;
    /// What the catalog is made of: the PostgreSQL sources (which catalog reloads replace, on the
    /// main loop) and the archives open (which the reload thread replaces).
    std::mutex publish_mutex;
    std::vector<std::shared_ptr<tiles::tile_source const>> fixed;
    std::vector<std::shared_ptr<tiles::tile_source const>> archives;
    std::atomic<std::uint64_t> reloads{0};

    std::shared_ptr<tiles::tile_source const> open_one(std::string const& kind, std::string const& id,
                                                       std::string const& path) {
        if (kind == "mbtiles") {
            return std::make_shared<mbtiles::mbtiles_source>(id, path, blocking);
        }
        if (!tiles::is_http_url(path)) {
            return std::make_shared<pmtiles::pmtiles_source>(id, path, blocking, directory_share);
        }
        if (!client) {
            client = archive_client(pmtiles.remote, blocking);
        }
        std::function<void()> changed;
        if (cache != nullptr) {
            changed = [c = cache, id] {
                auto const dropped = c->drop_source(id);
                spdlog::info("Source '{}' changed: {} cached tiles dropped", id, dropped);
            };
        }
        return std::make_shared<pmtiles::pmtiles_source>(id, path, blocking, directory_share, client,
                                                         std::move(changed));
    }

    struct changes {
        std::vector<std::string> added;
        std::vector<std::string> replaced;
        std::vector<std::string> removed;
        [[nodiscard]] bool any() const { return !added.empty() || !replaced.empty() || !removed.empty(); }
    };

    /// Lists the archives again and opens those that are new or changed; at startup every one.
    changes scan(tiles::id_resolver& id_source, bool startup, std::set<std::string> const& busy) {
        changes out;
        std::map<std::string, open_archive> next;
        for (auto const& [kind, extension, config] :
             {std::tuple{"mbtiles", ".mbtiles", &mbtiles}, std::tuple{"pmtiles", ".pmtiles", &pmtiles}}) {
            for (auto const& file : tiles::archive_files(*config, extension, !startup)) {
                auto const canonical = canonical_of(file.path);
                auto const key = fmt::format("{}:{}", kind, canonical);
                if (next.contains(key)) {
                    continue; // named twice (a file, and its directory)
                }
                auto const old = open.find(key);
                if (busy.contains(canonical)) { // being written: the old version, or nothing yet
                    if (old != open.end()) {
                        next.emplace(key, old->second);
                    }
                    continue;
                }
                auto identity = identity_of(file.path);
                if (identity.empty()) {
                    continue; // gone since the listing
                }
                if (old != open.end() && old->second.identity == identity) {
                    next.emplace(key, old->second);
                    continue;
                }
                auto const id =
                    id_source.resolve(file.id.empty() ? tiles::file_stem(file.path) : file.id, key);
                try {
                    next.emplace(key, open_archive{id, std::move(identity), open_one(kind, id, file.path)});
                    (old == open.end() ? out.added : out.replaced).push_back(id);
                } catch (source_error const& e) {
                    if (startup && on_invalid == postgis::invalid_policy::abort) {
                        throw config_error{fmt_error(
                            "{}\nfix the file, or set on_invalid: warn (--on-invalid warn) to start "
                            "without it",
                            e.what())};
                    }
                    spdlog::warn("{}; the source is {}", e.what(),
                                 startup ? "skipped" : "not served until the file is fixed");
                }
            }
        }
        for (auto const& [key, archive] : open) {
            if (!next.contains(key)) {
                out.removed.push_back(archive.id);
            }
        }
        open = std::move(next);
        return out;
    }

    [[nodiscard]] std::vector<std::shared_ptr<tiles::tile_source const>> sources() const {
        std::vector<std::shared_ptr<tiles::tile_source const>> out;
        for (auto const& [key, archive] : open) {
            out.push_back(archive.source);
        }
        return out;
    }

    /// On the main loop: every `every`, each archive at a URL asks its server whether it changed.
    void recheck_after(std::chrono::milliseconds every) {
        recheck->expires_after(every);
        recheck->async_wait([self = shared_from_this(), every](boost::system::error_code const& ec) {
            if (ec || !self->rechecking) {
                return;
            }
            asio::post(self->reload, [self] { self->recheck_now(); });
            self->recheck_after(every);
        });
    }

    /// On the reload thread (which owns `open`): each remote archive asks, on the blocking pool.
    void recheck_now() const {
        for (auto const& [key, archive] : open) {
            auto remote = std::dynamic_pointer_cast<pmtiles::pmtiles_source const>(archive.source);
            if (remote && remote->remote()) {
                asio::co_spawn(
                    blocking, [remote]() -> asio::awaitable<void> { co_await remote->revalidate(); },
                    asio::detached);
            }
        }
    }

    /// Publishes `fixed` and `archives` as the catalog. \pre publish_mutex is held.
    void publish_locked() {
        auto next = std::make_shared<tiles::catalog>();
        for (auto const* list : {&fixed, &archives}) {
            for (auto const& source : *list) {
                next->add(source);
            }
        }
        live->replace(std::move(next));
    }

    /// On the reload thread: looks again, and publishes a new catalog if anything changed.
    void reload_now(std::set<std::string> const& busy) {
        changes found;
        try {
            found = scan(*ids, false, busy);
        } catch (std::exception const& e) {
            spdlog::error("Reloading the archives failed: {}; the catalog stays as it was", e.what());
            return;
        }
        if (!found.any()) {
            return;
        }
        {
            std::lock_guard const lock{publish_mutex};
            archives = sources();
            publish_locked();
        }
        std::size_t dropped = 0;
        if (cache != nullptr) {
            for (auto const* list : {&found.replaced, &found.removed}) {
                for (auto const& id : *list) {
                    dropped += cache->drop_source(id);
                }
            }
        }
        ++reloads;
        spdlog::info("Archives changed (added: [{}], replaced: [{}], removed: [{}]): catalog republished, {} "
                     "cached tiles dropped",
                     fmt::join(found.added, ", "), fmt::join(found.replaced, ", "),
                     fmt::join(found.removed, ", "), dropped);
    }

    /// On the main loop: the next quiet period ends in a reload.
    void schedule() {
        quiet->expires_after(quiet_time); // cancels a wait in progress, which then waits again
        if (waiting) {
            return;
        }
        waiting = true;
        quiet->async_wait(
            [self = shared_from_this()](boost::system::error_code const& ec) { self->quiet_over(ec); });
    }

    void quiet_over(boost::system::error_code const& ec) {
        if (!inotify) {
            return; // stopped
        }
        if (ec == asio::error::operation_aborted) {
            quiet->async_wait(
                [self = shared_from_this()](boost::system::error_code const& e) { self->quiet_over(e); });
            return;
        }
        waiting = false;
        asio::post(reload, [self = shared_from_this(), busy = writing] { self->reload_now(busy); });
    }

    void read_events() {
        inotify->async_read_some(
            asio::buffer(events),
            [self = shared_from_this()](boost::system::error_code const& ec, std::size_t n) {
                if (ec || !self->inotify) {
                    return;
                }
                self->handle_events(n);
                self->read_events();
            });
    }

    void handle_events(std::size_t n) {
        bool any = false;
        for (std::size_t at = 0; at + sizeof(inotify_event) <= n;) {
            inotify_event ev{};
            std::memcpy(&ev, events.data() + at, sizeof ev);
            std::string const name =
                ev.len > 0 ? std::string{events.data() + at + sizeof ev} : std::string{}; // NUL-padded
            at += sizeof ev + ev.len;
            if ((ev.mask & IN_Q_OVERFLOW) != 0U) {
                any = true; // events were lost: look at everything
                continue;
            }
            auto const dir = dirs.find(ev.wd);
            if (dir == dirs.end() || name.empty() || !dir->second.wants(name)) {
                continue;
            }
            auto const path = canonical_of((dir->second.dir / name).string());
            if ((ev.mask & (IN_CREATE | IN_MODIFY)) != 0U) {
                writing.insert(path); // not read until it is closed
            }
            if ((ev.mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE)) != 0U) {
                writing.erase(path);
                any = true;
            }
        }
        if (any) {
            schedule();
        }
    }

    void add_watch(fs::path const& dir, std::optional<std::string> extension,
                   std::optional<std::string> name) {
        auto const wd = ::inotify_add_watch(inotify->native_handle(), dir.c_str(),
                                            IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO |
                                                IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR);
        if (wd < 0) {
            spdlog::warn("Cannot watch {} for archive changes: {}; changes there need a restart",
                         dir.string(), std::strerror(errno));
            return;
        }
        auto& w = dirs[wd];
        w.dir = dir;
        if (extension) {
            w.extensions.insert(*extension);
        }
        if (name) {
            w.names.insert(*name);
        }
    }
};

archive_set::archive_set(config::settings const& settings, asio::any_io_executor blocking,
                         tiles::tile_cache* cache)
    : m_state(std::make_shared<state>(settings, std::move(blocking), cache)) {}

archive_set::~archive_set() {
    stop();
    m_state->reload.join();
}

std::vector<std::shared_ptr<tiles::tile_source const>> archive_set::open_all(tiles::id_resolver& ids) {
    auto& s = *m_state;
    // The PMTiles directory cache is shared out between the archives there are at startup.
    auto const count = tiles::archive_files(s.pmtiles, ".pmtiles").size();
    auto const megabytes = s.pmtiles.directory_cache_mb.value_or(
        static_cast<std::uint64_t>(std::max<std::int64_t>(s.cache_size_mb, 0)) / 4);
    s.directory_share = megabytes * 1'000'000 / std::max<std::size_t>(count, 1);
    (void)s.scan(ids, true, {});
    return s.sources();
}

void archive_set::replace_fixed(std::vector<std::shared_ptr<tiles::tile_source const>> fixed) {
    auto& s = *m_state;
    std::lock_guard const lock{s.publish_mutex};
    s.fixed = std::move(fixed);
    s.publish_locked();
}

void archive_set::watch(asio::io_context& ioc, std::vector<std::shared_ptr<tiles::tile_source const>> fixed,
                        std::shared_ptr<tiles::live_catalog> live, tiles::id_resolver& ids) {
    auto& s = *m_state;
    {
        std::lock_guard const lock{s.publish_mutex};
        s.fixed = std::move(fixed);
        s.archives = s.sources();
    }
    s.live = std::move(live);
    s.ids = &ids;
    // Archives at URLs are not watched: their servers are asked every reload_interval.
    auto const every = s.pmtiles.remote.reload_interval.value_or(std::chrono::minutes{10});
    bool const any_remote = std::any_of(s.open.begin(), s.open.end(), [](auto const& entry) {
        auto const p = std::dynamic_pointer_cast<pmtiles::pmtiles_source const>(entry.second.source);
        return p && p->remote();
    });
    if (any_remote && every > std::chrono::milliseconds::zero()) {
        s.recheck.emplace(ioc);
        s.rechecking = true;
        s.recheck_after(every);
    }
    int const fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        spdlog::warn("Cannot watch archive files: {}; archives that change need a restart",
                     std::strerror(errno));
        return;
    }
    s.inotify.emplace(ioc, fd);
    s.quiet.emplace(ioc);
    // A directory is watched for archives of its kind; a named file through its directory.
    auto const follow = [&s](std::string const& path, char const* extension) {
        if (tiles::is_http_url(path)) {
            return;
        }
        std::error_code ec;
        auto const absolute = fs::absolute(path, ec);
        if (extension != nullptr && fs::is_directory(absolute, ec)) {
            s.add_watch(absolute, std::string{extension}, std::nullopt);
        } else {
            s.add_watch(absolute.parent_path(), std::nullopt, absolute.filename().string());
        }
    };
    for (auto const& [config, extension] :
         {std::pair{&s.mbtiles, ".mbtiles"}, std::pair{&s.pmtiles, ".pmtiles"}}) {
        for (auto const& path : config->paths) {
            follow(path, extension);
        }
        for (auto const& source : config->sources) {
            follow(source.path, nullptr);
        }
    }
    if (s.dirs.empty()) {
        s.inotify.reset();
        return;
    }
    spdlog::info("Watching {} director{} for archive changes", s.dirs.size(),
                 s.dirs.size() == 1 ? "y" : "ies");
    s.read_events();
}

void archive_set::stop() {
    auto& s = *m_state;
    if (s.inotify) {
        boost::system::error_code ignored;
        s.inotify->close(ignored);
        s.inotify.reset();
    }
    if (s.quiet) {
        s.quiet->cancel();
    }
    s.rechecking = false;
    if (s.recheck) {
        s.recheck->cancel();
    }
}

std::uint64_t archive_set::reloads() const noexcept {
    return m_state->reloads.load();
}

} // namespace kachel::app
