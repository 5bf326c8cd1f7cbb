/*
** Every file that calls SQLite includes this. Built as a loadable extension
** the calls go through the sqlite3_api table set by sqlite3_pagepir_init;
** built into libpagepir.a (-DSQLITE_CORE) they are direct calls.
*/
#ifndef PAGEPIR_SQLITE_API_H
#define PAGEPIR_SQLITE_API_H
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3
#endif
