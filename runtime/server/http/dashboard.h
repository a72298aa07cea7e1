/*
 * The dashboard page (runtime/dashboard/index.html), compiled into the
 * binary by cmake/embed.cmake and served by the HTTP front end at GET /.
 */
#ifndef IMP_DASHBOARD_H
#define IMP_DASHBOARD_H

#include <stddef.h>

/* The page's bytes (followed by a NUL not counted in the length). */
extern const unsigned char imp_dashboard_html[];
extern const size_t imp_dashboard_html_len;

#endif
