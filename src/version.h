/* version.h - the version dtmd reports (/api/dtmsvr/version, --version). */
#ifndef DTMD_VERSION_H
#define DTMD_VERSION_H
#define DTMD_VERSION "v0.1.0"
#endif
