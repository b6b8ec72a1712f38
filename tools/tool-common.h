/* SPDX-License-Identifier: Apache-2.0 */
/* What every ferry tool does the same way (docs/tools.md, "Common to every
 * tool"):
 *
 *   --help     usage on stdout, exit 0
 *   --version  one line, "<prog> <ferry version> (libferry <loaded version>)"
 *   --json F   JSON to file F, overwritten; "-" is standard output (the
 *              text that would go there goes to standard error instead)
 *   exit codes FT_EXIT_* below
 *
 * JSON is written with jansson; every object a tool writes (a row, or the
 * one document of ferry-info/ferry-check) carries "ferry_version", "host"
 * and "time" (UTC, ISO 8601) at its top level. */
#ifndef FERRY_TOOLS_COMMON_H
#define FERRY_TOOLS_COMMON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/* Exit codes shared by every tool. */
#define FT_EXIT_OK       0 /* success; ferry-check: no problem found */
#define FT_EXIT_ERROR    1 /* the run failed; ferry-check: a problem found */
#define FT_EXIT_USAGE    2 /* bad or unsupported option or argument */
#define FT_EXIT_MISMATCH 3 /* --check_consistency found a wrong byte */
#define FT_EXIT_PLOT     4 /* --plot cannot run (no python3/matplotlib) */

/* The --version line, on stdout. */
void ft_print_version(const char *prog);

/* True (after printing) when arg is --help/-h (usage(stdout) is called)
 * or --version; the caller then exits FT_EXIT_OK. For the small tools
 * whose arguments are positional. */
bool ft_std_arg(const char *prog, const char *arg, void (*usage)(FILE *));

/* The destination of a --json whose value may be left out (ferry-info,
 * ferry-check; getopt's optional_argument): `--json=F`, `--json F` (F is
 * "-" or does not start with '-'; *optind moves past it), else "-". */
const char *ft_json_dest(const char *optarg, int argc, char **argv, int *optind);

/* Adds "ferry_version", "host" and "time" to obj. */
void ft_json_meta(json_t *obj);

/* Opens a --json or --csv destination for writing (truncating): "-" is
 * standard output, and stdout is then pointed at stderr so the tool's text
 * does not mix with the data. Returns NULL with errno set on failure. */
FILE *ft_out_open(const char *path);
/* Points stdout at stderr now, keeping the real standard output for a
 * later ft_out_open("-"): for tools that print before they open outputs. */
void ft_reserve_stdout(void);
/* Closes what ft_out_open gave; false (errno set) when a write failed. */
bool ft_out_close(FILE *f);

/* obj (with ft_json_meta added) as one line of f, flushed; steals obj. */
bool ft_json_line(FILE *f, json_t *obj);

#endif
