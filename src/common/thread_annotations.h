// Lock annotations in the style of Clang's -Wthread-safety: GUARDED_BY(mu) on a member says
// which mutex protects it, REQUIRES(mu) on a function says the caller must hold it,
// EXCLUDES(mu) that the caller must not. They document the locking rules in every build and
// are checked when compiling with Clang; with other compilers they expand to nothing.
#pragma once

#if defined(__clang__)
#define MICEDB_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define MICEDB_THREAD_ANNOTATION(x)
#endif

#ifndef GUARDED_BY
#define GUARDED_BY(x) MICEDB_THREAD_ANNOTATION(guarded_by(x))
#endif
#ifndef PT_GUARDED_BY
#define PT_GUARDED_BY(x) MICEDB_THREAD_ANNOTATION(pt_guarded_by(x))
#endif
#ifndef REQUIRES
#define REQUIRES(...) MICEDB_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#endif
#ifndef EXCLUDES
#define EXCLUDES(...) MICEDB_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#endif
