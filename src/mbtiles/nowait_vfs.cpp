#include "mbtiles/nowait_vfs.hpp"

#include "core/mapped_file.hpp"

#include <sqlite3.h>

#include <cstdint>
#include <mutex>

namespace kachel::mbtiles {

namespace {

thread_local bool t_armed = false;   ///< inside a nowait_scope
thread_local bool t_refused = false; ///< a read refused since the scope began

/// True when the `amount` bytes at `page` are in memory. Only the page SQLite asks for is
/// checked: it reads the index and table pages that find a tile's row (mapped_table reads the
/// tile's own pages and checks them a run at a time). Checking 256 KiB around each page instead
/// cost more than it saved once SQLite no longer read the tiles: most of those pages were never
/// touched through SQLite's mapping, and mincore looked each one up in the page cache (perf on
/// bench/run's MBTiles tiles: mincore 10.4 % of kachel's CPU with 256 KiB, 6.1 % with this).
bool in_memory(void const* page, std::size_t amount) noexcept {
    return memory_resident(page, amount);
}

/// A file of the VFS: SQLite's own file follows it in the same allocation (szOsFile).
struct shim_file {
    sqlite3_file base;
};

sqlite3_file* real(sqlite3_file* file) noexcept {
    // NOLINTNEXTLINE(*-reinterpret-cast,*-pointer-arithmetic): the VFS's layout
    return reinterpret_cast<sqlite3_file*>(reinterpret_cast<shim_file*>(file) + 1);
}

sqlite3_vfs* root() noexcept {
    static sqlite3_vfs* const vfs = sqlite3_vfs_find(nullptr);
    return vfs;
}

// The file methods: SQLite's own, but for reads in a nowait_scope.

int shim_read(sqlite3_file* file, void* buffer, int amount, sqlite3_int64 offset) {
    if (t_armed) {
        // Only a page outside the mapping, or not in memory, is read this way: it could wait.
        t_refused = true;
        return SQLITE_IOERR_READ;
    }
    auto* const f = real(file);
    return f->pMethods->xRead(f, buffer, amount, offset);
}

int shim_fetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** page) {
    auto* const f = real(file);
    int const rc = f->pMethods->xFetch(f, offset, amount, page);
    if (rc == SQLITE_OK && t_armed && *page != nullptr &&
        !in_memory(*page, static_cast<std::size_t>(amount))) {
        // Touching it would wait for the disk: SQLite then asks shim_read, which refuses.
        f->pMethods->xUnfetch(f, offset, *page);
        *page = nullptr;
    }
    return rc;
}

int shim_close(sqlite3_file* file) {
    auto* const f = real(file);
    return f->pMethods != nullptr ? f->pMethods->xClose(f) : SQLITE_OK;
}

int shim_write(sqlite3_file* file, void const* data, int amount, sqlite3_int64 offset) {
    auto* const f = real(file);
    return f->pMethods->xWrite(f, data, amount, offset);
}

int shim_truncate(sqlite3_file* file, sqlite3_int64 size) {
    auto* const f = real(file);
    return f->pMethods->xTruncate(f, size);
}

int shim_sync(sqlite3_file* file, int flags) {
    auto* const f = real(file);
    return f->pMethods->xSync(f, flags);
}

int shim_file_size(sqlite3_file* file, sqlite3_int64* size) {
    auto* const f = real(file);
    return f->pMethods->xFileSize(f, size);
}

int shim_lock(sqlite3_file* file, int level) {
    auto* const f = real(file);
    return f->pMethods->xLock(f, level);
}

int shim_unlock(sqlite3_file* file, int level) {
    auto* const f = real(file);
    return f->pMethods->xUnlock(f, level);
}

int shim_check_reserved(sqlite3_file* file, int* out) {
    auto* const f = real(file);
    return f->pMethods->xCheckReservedLock(f, out);
}

int shim_file_control(sqlite3_file* file, int op, void* arg) {
    auto* const f = real(file);
    return f->pMethods->xFileControl(f, op, arg);
}

int shim_sector_size(sqlite3_file* file) {
    auto* const f = real(file);
    return f->pMethods->xSectorSize(f);
}

int shim_device_characteristics(sqlite3_file* file) {
    auto* const f = real(file);
    return f->pMethods->xDeviceCharacteristics(f);
}

int shim_shm_map(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
    auto* const f = real(file);
    return f->pMethods->xShmMap(f, region, size, extend, out);
}

int shim_shm_lock(sqlite3_file* file, int offset, int n, int flags) {
    auto* const f = real(file);
    return f->pMethods->xShmLock(f, offset, n, flags);
}

void shim_shm_barrier(sqlite3_file* file) {
    auto* const f = real(file);
    f->pMethods->xShmBarrier(f);
}

int shim_shm_unmap(sqlite3_file* file, int remove) {
    auto* const f = real(file);
    return f->pMethods->xShmUnmap(f, remove);
}

int shim_unfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
    auto* const f = real(file);
    return f->pMethods->xUnfetch(f, offset, page);
}

sqlite3_io_methods const shim_methods{
    3,
    shim_close,
    shim_read,
    shim_write,
    shim_truncate,
    shim_sync,
    shim_file_size,
    shim_lock,
    shim_unlock,
    shim_check_reserved,
    shim_file_control,
    shim_sector_size,
    shim_device_characteristics,
    shim_shm_map,
    shim_shm_lock,
    shim_shm_barrier,
    shim_shm_unmap,
    shim_fetch,
    shim_unfetch,
};

int shim_open(sqlite3_vfs* /*vfs*/, char const* name, sqlite3_file* file, int flags, int* out_flags) {
    auto* const f = real(file);
    int const rc = root()->xOpen(root(), name, f, flags, out_flags);
    // SQLite's file answers through the shim only when it has methods (it was opened); with
    // none, SQLite calls nothing on it, not even close.
    file->pMethods = f->pMethods != nullptr && f->pMethods->iVersion >= 3 ? &shim_methods : nullptr;
    if (f->pMethods != nullptr && file->pMethods == nullptr) {
        f->pMethods->xClose(f); // a VFS too old to map pages: not this one
        return SQLITE_CANTOPEN;
    }
    return rc;
}

} // namespace

char const* nowait_vfs() noexcept {
    static sqlite3_vfs vfs;
    static std::once_flag once;
    std::call_once(once, [] {
        // Every method SQLite's own (the Unix VFS's take any VFS pointer and use only what is
        // copied here), but for opening files, which get the shim's methods, and their size.
        vfs = *root();
        vfs.pNext = nullptr;
        vfs.zName = "kachel-nowait";
        vfs.szOsFile = static_cast<int>(sizeof(shim_file)) + root()->szOsFile;
        vfs.xOpen = shim_open;
        sqlite3_vfs_register(&vfs, 0);
    });
    return vfs.zName;
}

std::size_t bytes_at_hand(void const* start, std::size_t amount, std::size_t likely) noexcept {
    if (!t_armed) {
        return likely;
    }
    if (likely > amount && memory_resident(start, likely)) {
        return likely;
    }
    if (memory_resident(start, amount)) {
        return amount;
    }
    t_refused = true;
    return 0;
}

nowait_scope::nowait_scope() noexcept : m_refused(&t_refused) {
    t_armed = true;
    t_refused = false;
}

nowait_scope::~nowait_scope() {
    t_armed = false;
}

} // namespace kachel::mbtiles
