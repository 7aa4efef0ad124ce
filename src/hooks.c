/*
 * hooks.c -- every hook and callback through which PostgreSQL calls settle,
 * installed and chained here, in one documented order.  The concerns keep
 * their own logic and export what runs at each point; none installs a hook.
 *
 * ProcessUtility_hook (every backend that loads the library), around the
 * statement, outermost first:
 *   1. db_events.c, while preloaded: before it, tell the launcher about
 *      CREATE EXTENSION settle / CREATE DATABASE and stop a database's worker
 *      that is in the way; after it, ran or failed, lift the pause;
 *   2. drop_guard.c: before it, refuse DROP EXTENSION settle over a ledger;
 *   3. the previous hook or standard_ProcessUtility;
 *   4. role_map.c: after it, a DROP ROLE's roles lose their mappings.
 * shmem_request_hook and shmem_startup_hook (while preloaded): the previous
 * hook, then the workers' slots (worker_state.c), then the backlogs
 * (backlog.c, sized by the slots' setting).
 * A relcache callback (every backend): refcache.c's caches of reference data.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "tcop/utility.h"
#include "utils/inval.h"

#include "backlog.h"
#include "drop_guard.h"
#include "hooks.h"
#include "launcher.h"
#include "refcache.h"
#include "role_map.h"
#include "worker_state.h"

static ProcessUtility_hook_type prev_process_utility = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static bool with_db_events = false;

static void settle_process_utility(PlannedStmt *pstmt, const char *queryString,
								   bool readOnlyTree, ProcessUtilityContext context,
								   ParamListInfo params, QueryEnvironment *queryEnv,
								   DestReceiver *dest, QueryCompletion *qc);
static void settle_shmem_request(void);
static void settle_shmem_startup(void);

void
settle_hooks_install(bool preloaded)
{
	with_db_events = preloaded;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = settle_process_utility;
	CacheRegisterRelcacheCallback(settle_refcache_relation_changed, (Datum) 0);
	if (preloaded)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = settle_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = settle_shmem_startup;
	}
}

static void
settle_process_utility(PlannedStmt *pstmt, const char *queryString,
					   bool readOnlyTree, ProcessUtilityContext context,
					   ParamListInfo params, QueryEnvironment *queryEnv,
					   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	bool		drop_role = IsA(parsetree, DropRoleStmt);
	bool		drop = false;
	volatile bool was_drop;
	volatile int paused = -1;

	if (with_db_events)
		paused = settle_db_events_before_utility(parsetree, &drop);
	was_drop = drop;
	PG_TRY();
	{
		settle_drop_guard_before_utility(parsetree);
		if (prev_process_utility)
			prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		settle_role_map_after_utility(drop_role);
	}
	PG_FINALLY();
	{
		if (with_db_events)
			settle_db_events_after_utility(paused, was_drop);
	}
	PG_END_TRY();
}

static void
settle_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	settle_worker_state_shmem_request();
	settle_backlog_shmem_request();
}

static void
settle_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	settle_worker_state_shmem_startup();
	settle_backlog_shmem_startup();
}
