"""The heuristic assessor's knowledge: common failure signatures with their
usual cause and next steps, and per-domain fallbacks. Data only; the matching
lives in ``heuristic.py``."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """A next step: ``action`` says what, ``detail`` how. ``key`` (default: the
    action) holds the step's essential words, used to recognise it as already
    tried — keep it short, so "Rolled back" matches "Roll back to the last good
    version"."""

    action: str
    detail: str = ""
    key: str = ""

    @property
    def text(self) -> str:
        return f"{self.action}: {self.detail}" if self.detail else self.action


@dataclass(frozen=True)
class Signature:
    """A common failure: loose patterns (case-insensitive regexes), its usual
    cause and what to do next. A ``broad`` signature (timeouts, 5xx) is usually a
    symptom of something more specific, so it ranks after others on equal hits."""

    name: str
    patterns: tuple[str, ...]
    cause: str
    steps: tuple[Step, ...]
    broad: bool = False


@dataclass(frozen=True)
class Fallback:
    """What to look at in a domain when no signature says more. ``domain`` is a
    regex over the handoff's ``problem_domain``."""

    domain: str
    cause: str
    steps: tuple[Step, ...]


PLAYBOOK: tuple[Signature, ...] = (
    Signature(
        name="oom_killed",
        patterns=(
            r"oom[ -]?kill",
            r"out of ?memory",
            r"exit(?:ed)?(?: with)?(?: code| status)?[ :=]*137\b",
            r"cannot allocate memory",
            r"memory limit",
        ),
        cause="The container exceeds its memory limit and is OOM-killed (exit code 137): "
        "the limit is too low for the workload, or memory grows without bound.",
        steps=(
            Step(
                "Compare the memory limit with the real peak usage",
                "kubectl describe pod (Last State: OOMKilled) and kubectl top pod or "
                "container_memory_working_set_bytes over the last day",
                key="check memory usage limit",
            ),
            Step(
                "Raise the memory limit",
                "set resources.limits.memory above the observed peak with headroom; for the "
                "JVM keep -Xmx / MaxRAMPercentage below the limit",
            ),
            Step(
                "Check whether memory climbs steadily since the last deploy",
                "a climb to the limit between restarts points at a leak, not at undersizing",
            ),
        ),
    ),
    Signature(
        name="crash_loop",
        patterns=(
            r"crashloopbackoff",
            r"back-?off restarting failed container",
            r"crash(?:es|ing)? loop",
        ),
        cause="The process exits soon after start (bad config, missing env var or secret, "
        "failing migration, or a failing liveness probe) and Kubernetes keeps restarting it.",
        steps=(
            Step(
                "Read the logs of the previous, crashed container",
                "kubectl logs <pod> --previous; the last lines before exit usually name the cause",
            ),
            Step(
                "Check the exit code and reason of the pod's last state",
                "kubectl describe pod: 137 = killed/OOM, 143 = SIGTERM, 1 = application error",
            ),
            Step(
                "Check the liveness probe timings",
                "a short initialDelaySeconds or timeout kills a slow-starting app",
            ),
        ),
    ),
    Signature(
        name="image_pull",
        patterns=(
            r"imagepullbackoff",
            r"errimagepull",
            r"manifest unknown",
            r"pull access denied",
            r"image .{0,40}not found",
        ),
        cause="The node cannot pull the image: a wrong tag or digest, missing registry "
        "credentials (imagePullSecrets), or the registry is unreachable or rate-limiting.",
        steps=(
            Step("Verify the image name and tag exist in the registry", key="check image tag"),
            Step(
                "Check imagePullSecrets and the registry credentials",
                "kubectl get events on the pod shows the registry's exact answer",
            ),
            Step(
                "Check the node's egress to the registry",
                "Docker Hub's pull rate limit (429 toomanyrequests) also shows up as a pull error",
            ),
        ),
    ),
    Signature(
        name="dns",
        patterns=(
            r"nxdomain",
            r"servfail",
            r"could not resolve",
            r"name or service not known",
            r"no such host",
            r"temporary failure in name resolution",
            r"getaddrinfo",
            r"unknownhostexception",
            r"\bdns\b",
        ),
        cause="Name resolution fails: the hostname is wrong, the record is missing or not yet "
        "propagated, or the resolver (CoreDNS, VPC DNS) is unhealthy.",
        steps=(
            Step(
                "Resolve the name from the failing host itself",
                "dig or nslookup inside the pod or VM, compared with a host where it works",
                key="resolve",
            ),
            Step(
                "Verify the DNS record and its TTL at the authoritative zone",
                "a recent record change may not have propagated yet",
                key="check dns record",
            ),
            Step(
                "Check the resolver's health and search path",
                "CoreDNS pods and logs, /etc/resolv.conf search domains and ndots",
            ),
        ),
    ),
    Signature(
        name="connection_refused",
        patterns=(r"connection refused", r"econnrefused", r"errno 111"),
        cause="Nothing listens on the target host and port: the service is down, bound to "
        "another port or to 127.0.0.1 only, or the Service has no ready endpoints.",
        steps=(
            Step(
                "Check the target process is up and listening on the expected port",
                "ss -ltnp on the target; it must bind 0.0.0.0, not 127.0.0.1",
                key="check listening port",
            ),
            Step(
                "Verify the Service endpoints and target port",
                "kubectl get endpoints; the selector and targetPort must match ready pods",
                key="endpoints",
            ),
            Step("Check the host and port in the client's configuration"),
        ),
    ),
    Signature(
        name="timeout",
        broad=True,
        patterns=(
            r"timed? ?out",
            r"timeout",
            r"deadline exceeded",
            r"etimedout",
            r"\b504\b",
            r"gateway time-?out",
        ),
        cause="Requests time out: a firewall, security group or network policy silently drops "
        "traffic, or the dependency is overloaded and answers too slowly.",
        steps=(
            Step(
                "Test connectivity from the client's own network location",
                "nc -vz host port or curl -v with timings, from the same pod or subnet",
                key="test connectivity",
            ),
            Step(
                "Check security groups, network policies and firewall rules on the path",
                key="check firewall security group",
            ),
            Step(
                "Check the latency and saturation of the downstream dependency",
                "p99 latency, queue depth, thread or connection pool exhaustion",
            ),
        ),
    ),
    Signature(
        name="tls",
        patterns=(
            r"certificate",
            r"\bx509\b",
            r"\bssl",
            r"\btls\b",
            r"handshake",
            r"self[- ]signed",
            r"unknown (?:certificate )?authority",
            r"\bcert\b",
        ),
        cause="The TLS handshake fails: the certificate expired, the chain is incomplete, the "
        "hostname does not match, or the client does not trust the issuing CA.",
        steps=(
            Step(
                "Inspect the served certificate chain and its expiry",
                "openssl s_client -connect host:443 -servername host -showcerts",
                key="check certificate",
            ),
            Step(
                "Check the hostname matches the certificate's subject alternative names",
                key="check hostname san",
            ),
            Step(
                "Update the client's CA bundle or trust store",
                "e.g. after the peer moved to a new CA or intermediate; never disable verification",
                key="update ca bundle trust store",
            ),
        ),
    ),
    Signature(
        name="deadlock",
        patterns=(r"deadlock", r"lock wait timeout", r"could not obtain lock", r"\b40p01\b"),
        cause="Concurrent transactions lock rows in different orders or hold locks too long, "
        "so the database aborts one of them.",
        steps=(
            Step(
                "Read the deadlock report to find the two conflicting statements",
                "PostgreSQL log 'deadlock detected' or MySQL SHOW ENGINE INNODB STATUS",
            ),
            Step("Make the transactions lock rows in one consistent order and keep them short"),
            Step("Retry the aborted transaction with back-off", key="retry transaction"),
        ),
    ),
    Signature(
        name="too_many_connections",
        patterns=(
            r"too many (?:connections|clients)",
            r"remaining connection slots",
            r"max_connections",
            r"connection pool (?:is )?(?:exhausted|full)",
            r"queuepool limit",
            r"\b53300\b",
        ),
        cause="The database connection limit is exhausted: replicas × pool size exceed "
        "max_connections (often after a scale-up or pool change), or connections leak.",
        steps=(
            Step(
                "Count the database connections by client and state",
                "SELECT application_name, state, count(*) FROM pg_stat_activity GROUP BY 1, 2",
                key="check connections",
            ),
            Step(
                "Check pool size × replicas against max_connections",
                "a recent deploy that raised the pool size or the replica count multiplies them",
            ),
            Step(
                "Put a connection pooler in front of the database",
                "PgBouncer in transaction mode, or a smaller per-process pool",
                key="connection pooler",
            ),
            Step(
                "Terminate idle-in-transaction sessions and fix the leak",
                "set idle_in_transaction_session_timeout; find code paths that never return "
                "connections",
                key="terminate idle sessions",
            ),
        ),
    ),
    Signature(
        name="slow_query",
        patterns=(
            r"slow quer",
            r"seq(?:uential)? scan",
            r"full table scan",
            r"statement timeout",
            r"missing index",
        ),
        cause="A query got slow (missing index, plan change after data growth, or stale "
        "statistics) and holds connections and locks longer.",
        steps=(
            Step("Find the top queries by total time", "pg_stat_statements or the slow query log"),
            Step(
                "Run EXPLAIN ANALYZE on the slow query and add the missing index",
                key="explain analyze index",
            ),
            Step("Refresh the table statistics", "ANALYZE the table and check autovacuum"),
        ),
    ),
    Signature(
        name="migration",
        patterns=(
            r"migration",
            r"alembic",
            r"flyway",
            r"liquibase",
            r"(?:relation|column|table) .{0,60}does not exist",
            r"undefined(?:column|table)",
        ),
        cause="The schema and the code disagree: a migration did not run, failed half-way, or "
        "ran before code that still expects the old schema.",
        steps=(
            Step(
                "Compare the applied schema version with the one the code expects",
                "alembic current, flyway info, or the migrations table",
            ),
            Step("Read the migration job's logs for a partial failure"),
            Step(
                "Run the missing migration or make the change backward compatible",
                "expand/contract: add first, switch code, remove later",
            ),
        ),
    ),
    Signature(
        name="permission_denied",
        patterns=(
            r"\b403\b",
            r"forbidden",
            r"permission denied",
            r"access ?denied",
            r"not authori[sz]ed to perform",
            r"eacces",
            r"\brbac\b",
        ),
        cause="The caller is authenticated but lacks permission: a missing IAM or RBAC "
        "role or policy, a resource policy that denies it, or files owned by another user.",
        steps=(
            Step(
                "Identify the exact principal making the call",
                "aws sts get-caller-identity, kubectl auth can-i --as, or id in the container",
            ),
            Step("Compare that principal's roles and policies with what the action requires"),
            Step(
                "Check file ownership and mode for the process user",
                "ls -l on the path; containers often run as a non-root user",
            ),
        ),
    ),
    Signature(
        name="expired_credentials",
        patterns=(
            r"\b401\b",
            r"unauthori[sz]ed",
            r"(?:token|key|password|credentials?|secret) (?:has )?expired",
            r"expired (?:token|key|credentials?|password|secret)",
            r"invalid_grant",
            r"invalid (?:api )?(?:key|token|credentials)",
            r"authentication failed",
        ),
        cause="Credentials are missing, wrong or expired: a rotated secret that was not rolled "
        "out everywhere, an expired token or API key, or clock skew invalidating tokens.",
        steps=(
            Step(
                "Check which credential the client actually sends and when it expires",
                "decode the JWT's exp claim, or look up the key's last rotation",
            ),
            Step(
                "Rotate or re-issue the credential and roll it out to every consumer", key="rotate"
            ),
            Step("Check clock skew on the client host", "tokens are rejected when clocks drift"),
        ),
    ),
    Signature(
        name="disk_full",
        patterns=(
            r"no space left",
            r"disk (?:is )?full",
            r"enospc",
            r"disk ?pressure",
            r"\bevicted\b",
            r"inodes?",
        ),
        cause="A filesystem is full (data, logs, container images or inodes), so writes fail "
        "and the node may evict pods.",
        steps=(
            Step(
                "Find what fills the disk",
                "df -h and df -i, then du -xh --max-depth=1 / | sort -h",
            ),
            Step(
                "Free space safely",
                "rotate or compress logs, prune unused images, drop old backups or WAL",
                key="free space",
            ),
            Step(
                "Add log rotation or a retention policy so it does not recur",
                key="log rotation retention",
            ),
        ),
    ),
    Signature(
        name="memory_leak",
        patterns=(
            r"memory leak",
            r"\bleak",
            r"memory (?:keeps |is )?(?:growing|increasing|climbing)",
            r"heap",
            r"gc overhead",
        ),
        cause="Memory grows without bound: an unbounded cache, retained references, or "
        "resources that are never closed.",
        steps=(
            Step(
                "Graph memory per instance over several restarts",
                "a saw-tooth that only resets on restart means a leak",
            ),
            Step(
                "Diff two heap snapshots taken minutes apart",
                "tracemalloc, jmap -dump, or pprof heap profiles",
            ),
            Step("Bound the caches and close resources on the growing path"),
        ),
    ),
    Signature(
        name="cpu_latency",
        patterns=(
            r"high cpu",
            r"cpu (?:usage|spike|saturat|at 100)",
            r"throttl",
            r"latency",
            r"\bp9[59]\b",
            r"load average",
        ),
        cause="CPU saturation or throttling: a hot code path, a traffic spike, or a CPU limit "
        "that throttles the process and inflates latency.",
        steps=(
            Step(
                "Check CPU usage and throttling against the limits",
                "container_cpu_cfs_throttled_periods_total, top, or the node's load",
            ),
            Step("Profile the hot path on one instance", "py-spy, async-profiler or pprof"),
            Step("Scale out or raise the CPU limit as a stopgap"),
        ),
    ),
    Signature(
        name="deploy_regression",
        patterns=(
            r"(?:after|since) (?:\S+ ){0,3}(?:deploy|release|rollout|upgrade)",
            r"new (?:version|release|build)",
            r"regression",
            r"started (?:after|when|since)",
        ),
        cause="A recent change (deploy, config change or dependency upgrade) introduced the "
        "regression.",
        steps=(
            Step(
                "Roll back to the last good version",
                "kubectl rollout undo or redeploy the previous tag; debug the diff afterwards",
                key="roll back",
            ),
            Step(
                "Line up the first errors with the deploy and config-change timeline",
                key="deploy timeline",
            ),
            Step(
                "Diff configuration and dependency versions between the two releases",
                key="diff config dependencies",
            ),
        ),
    ),
    Signature(
        name="missing_config",
        patterns=(
            r"environment variable",
            r"\benv ?var",
            r"(?:is )?not set\b",
            r"missing (?:config|setting|env|variable|key|secret)",
            r"keyerror",
            r"configmap",
            r"secret .{0,40}not found",
        ),
        cause="A required configuration value (environment variable, secret or config file) "
        "is missing or wrong in this environment.",
        steps=(
            Step(
                "List the environment the process actually sees",
                "kubectl exec -- env or printenv, against the keys the app expects",
                key="check env",
            ),
            Step("Diff the ConfigMaps, Secrets and env files with a working environment"),
        ),
    ),
    Signature(
        name="rate_limit",
        patterns=(r"\b429\b", r"too many requests", r"rate[- ]?limit", r"quota"),
        cause="The caller exceeds an API rate limit or quota; retries without back-off make "
        "it worse.",
        steps=(
            Step(
                "Read the rate-limit headers and the provider's quota",
                "Retry-After, X-RateLimit-Remaining, the provider's usage dashboard",
            ),
            Step("Add exponential back-off with jitter that honours Retry-After", key="backoff"),
            Step("Reduce the call volume", "cache, batch, or ask for a higher quota"),
        ),
    ),
    Signature(
        name="server_errors",
        broad=True,
        patterns=(
            r"\b50[0-3]\b",
            r"\b5xx\b",
            r"internal server error",
            r"bad gateway",
            r"service unavailable",
        ),
        cause="An upstream returns server errors: it is crashing or overloaded, or a proxy "
        "cannot reach healthy backends.",
        steps=(
            Step(
                "Find which hop returns the 5xx",
                "502/503 from the proxy or load balancer versus 500 from the application",
            ),
            Step("Read the application's stack trace for one failing request id"),
            Step("Check the upstream's health checks and number of ready backends"),
        ),
    ),
)

FALLBACKS: tuple[Fallback, ...] = (
    Fallback(
        domain=r"kube|k8s|container|docker|pod|helm|eks|gke|aks|openshift",
        cause="A workload-level problem: a recent rollout, resource limits or scheduling "
        "constraints in the cluster.",
        steps=(
            Step(
                "Read the pod events and status",
                "kubectl describe pod and kubectl get events --sort-by=.lastTimestamp",
            ),
            Step("Check the recent rollout history", "kubectl rollout history for the workload"),
        ),
    ),
    Fallback(
        domain=r"network|dns|vpn|proxy|load ?balanc|firewall|cdn|ingress",
        cause="A network path problem: routing, filtering or name resolution between client "
        "and server.",
        steps=(
            Step("Trace the path hop by hop from the client", "dig, nc -vz, curl -v, traceroute"),
            Step("Check recent firewall, security group and routing changes"),
        ),
    ),
    Fallback(
        domain=r"data|\bdb\b|sql|postgres|mysql|mongo|redis|cache",
        cause="A database-side bottleneck: connections, locks or slow queries.",
        steps=(
            Step(
                "Check active sessions, locks and long-running queries",
                "pg_stat_activity and pg_locks, or SHOW PROCESSLIST",
            ),
            Step("Check the database's CPU, memory, IOPS and storage"),
        ),
    ),
    Fallback(
        domain=r"auth|iam|identity|sso|oauth|security|access|permission",
        cause="An identity or permission mismatch between the caller and the resource.",
        steps=(
            Step("Reproduce the call with verbose logging of the identity used"),
            Step("Check recent changes to roles, policies and credentials"),
        ),
    ),
    Fallback(
        domain=r"ci|cd|deploy|pipeline|build|release",
        cause="A pipeline or environment difference between the last good run and this one.",
        steps=(
            Step("Diff the failing run with the last green run", "inputs, versions, runner image"),
            Step("Re-run the failing stage alone with verbose logging"),
        ),
    ),
)

GENERIC_FALLBACK = Fallback(
    domain="",
    cause="Not enough signal for a specific cause yet: most incidents trace back to a "
    "recent change or a failing dependency.",
    steps=(
        Step("Capture the exact error message, timestamp and affected scope"),
        Step(
            "Check what changed around the time it started",
            "deploys, config, infrastructure",
            key="check changes",
        ),
        Step(
            "Check the health and recent errors of the dependencies involved",
            key="check dependencies",
        ),
    ),
)

#: Kept even when everything else was already tried.
LAST_RESORT = Step(
    "Verify together with the junior that each tried step really took effect",
    "right environment, right resource, change actually rolled out",
)
