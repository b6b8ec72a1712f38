/* SPDX-License-Identifier: Apache-2.0 */
/* Progress (progress.c): polling the backends, and the progress thread. */
#ifndef FY_CORE_PROGRESS_H
#define FY_CORE_PROGRESS_H

#include "ferry/agent.h"

/* Takes no lock: polls every backend that has a progress op. Returns the
 * first backend error, else IN_PROGRESS when some backend reported work
 * done, else OK. */
ferry_status fy_agent_poll(ferry_agent *agent);
/* Starts the progress thread when the config asks for one: OK or
 * NO_RESOURCES. */
ferry_status fy_progress_start(ferry_agent *agent);
void fy_progress_stop(ferry_agent *agent);

#endif
