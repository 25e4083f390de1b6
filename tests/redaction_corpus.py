"""The redaction corpus: secrets as people paste them into a troubleshooting
conversation, and ordinary sentences that must come through unchanged.

Every secret here is fake: well-formed for its kind (so a detector must find it)
and built by concatenation, so no literal in this file is a whole token that a
repository's secret scanning would take for a real one.
"""

import base64
import json
import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class Secret:
    """``text`` as pasted; ``values``: what must not survive anywhere (the whole
    secret, or each line of a multi-line one)."""

    kind: str
    text: str
    values: tuple[str, ...]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _pem(label: str, filler: bytes) -> tuple[str, tuple[str, ...]]:
    body = textwrap.wrap(base64.b64encode(filler * 12).decode(), 64)
    begin, end = "-----BEGIN " + label + "-----", "-----END " + label + "-----"
    return "\n".join([begin, *body, end]), (begin, *body)


def _jwt(claims: dict[str, str], signature: bytes) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    return ".".join([header, _b64url(json.dumps(claims).encode()), _b64url(signature)])


AWS_KEY_ID = "AKIA" + "FAKE" + "TESTONLY" + "1234"
AWS_STS_KEY_ID = "ASIA" + "FAKE" + "EXAMPLE0" + "9876"
AWS_SECRET = "FAKEfake" * 4 + "Fake/00+"
AWS_SECRET_QUOTED = "fakeFAKE" * 4 + "fake/11+"
GCP_KEY_ID = "0123456789abcdef" * 2 + "fakefake"
GCP_PEM, GCP_PEM_LINES = _pem("PRIVATE " + "KEY", b"fake gcp service account key material ")
GCP_JSON = json.dumps(
    {
        "type": "service_account",
        "project_id": "fake-project-123",
        "private_key_id": GCP_KEY_ID,
        "private_key": GCP_PEM + "\n",
        "client_email": "deployer@fake-project-123.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    },
    indent=2,
)
GHP = "ghp_" + "fakeTOKEN0" * 3 + "abcdef"
GITHUB_PAT = "github_pat_" + "11AAAAFAKE0123456789ab" + "_" + "fake" * 14 + "xyz"
GITLAB = "glpat-" + "FAKEfake0123456789ab"
XOXB = "xoxb-" + "000000000000-0000000000000-" + "FAKEfakeFAKEfakeFAKEfake"
XOXP = "xoxp-" + "0000000000-0000000000-0000000000000-" + "0123456789abcdef" * 2
SLACK_HOOK = "https://hooks.slack.com/services/" + "T00000000/B00000000/" + "FAKEfake" * 3
SK_LIVE = "sk_" + "live_" + "FAKE" * 6 + "fake00"
RK_LIVE = "rk_" + "live_" + "fake" * 6 + "FAKE11"
SK_TEST = "sk_" + "test_" + "Fake" * 6
JWT = _jwt({"sub": "fake-user", "name": "Fake Person", "scope": "admin"}, b"fake-signature-" * 2)
JWT_2 = _jwt({"sub": "svc-fake", "aud": "api"}, b"another-fake-sig" * 2)
RSA_PEM, RSA_LINES = _pem("RSA PRIVATE " + "KEY", b"fake rsa key bytes ")
EC_PEM, EC_LINES = _pem("EC PRIVATE " + "KEY", b"fake ec key bytes ")
OPENSSH_PEM, OPENSSH_LINES = _pem("OPENSSH PRIVATE " + "KEY", b"fake openssh key ")
GOOGLE_API_KEY = "AIza" + "FakeFakeFakeFake" + "0123456789" + "_-fakeXYZ"
BASIC_HEADER = base64.b64encode(b"fakeuser:fake-basic-pass-9").decode()

SECRETS: tuple[Secret, ...] = (
    Secret("AWS access key", f"exported AWS_ACCESS_KEY_ID={AWS_KEY_ID} and retried", (AWS_KEY_ID,)),
    Secret(
        "AWS access key",
        f"the role session gave {AWS_STS_KEY_ID} but S3 says 403",
        (AWS_STS_KEY_ID,),
    ),
    Secret("AWS secret key", f"aws_secret_access_key = {AWS_SECRET}", (AWS_SECRET,)),
    Secret("AWS secret key", f'aws_secret_key: "{AWS_SECRET_QUOTED}"', (AWS_SECRET_QUOTED,)),
    Secret(
        "GCP service-account JSON",
        f"here is the key file we mounted:\n{GCP_JSON}\nstill 403",
        (GCP_KEY_ID, *GCP_PEM_LINES),
    ),
    Secret("GitHub token", f"git clone https://github.com/org/repo with token {GHP}", (GHP,)),
    Secret("GitHub token", f"GH_TOKEN={GITHUB_PAT} gh api /user", (GITHUB_PAT,)),
    Secret("GitLab token", f"used {GITLAB} for the registry", (GITLAB,)),
    Secret("Slack token", f"bot token {XOXB} gets not_in_channel", (XOXB,)),
    Secret("Slack token", f"user token was {XOXP}", (XOXP,)),
    Secret("Slack webhook URL", f"alerts go to {SLACK_HOOK} and nothing arrives", (SLACK_HOOK,)),
    Secret("Stripe key", f"STRIPE_API_KEY {SK_LIVE} returns 401", (SK_LIVE,)),
    Secret("Stripe key", f"restricted key {RK_LIVE} lacks charges:write", (RK_LIVE,)),
    Secret("Stripe key", f"in staging we use {SK_TEST}", (SK_TEST,)),
    Secret("JWT", f"the API rejects {JWT} with 401", (JWT,)),
    Secret("JWT", f"Authorization: Bearer {JWT_2}", (JWT_2,)),
    Secret("private key", f"deploy key:\n{RSA_PEM}\nssh says permission denied", RSA_LINES),
    Secret("private key", f"{EC_PEM}", EC_LINES),
    Secret("private key", f"id_ed25519 contents: {OPENSSH_PEM} (from the bastion)", OPENSSH_LINES),
    Secret(
        "database URL",
        "DATABASE_URL=postgres://app:" + "S3cretFake!pw" + "@db.internal:5432/orders",
        ("S3cretFake!pw",),
    ),
    Secret(
        "database URL",
        "connecting with postgresql+psycopg://svc:" + "p@ss-Fake-7" + "@10.0.0.5/app fails",
        ("p@ss-Fake-7",),
    ),
    Secret(
        "database URL",
        "mysql://root:" + "FakeMyPass_42" + "@mysql-0.mysql:3306/app times out",
        ("FakeMyPass_42",),
    ),
    Secret(
        "database URL",
        "MONGO_URI=mongodb+srv://svc:" + "Fake%40Mongo99" + "@cluster0.abcde.mongodb.net/prod",
        ("Fake%40Mongo99",),
    ),
    Secret(
        "database URL",
        "REDIS_URL=redis://:" + "FakeRedisPass123" + "@redis-master:6379/0",
        ("FakeRedisPass123",),
    ),
    Secret(
        "password", "tried psql with password=" + "Hunter2-Fake!" + " again", ("Hunter2-Fake!",)
    ),
    Secret("password", "DB_PASSWORD: '" + "Fake_Pa55word" + "' in values.yaml", ("Fake_Pa55word",)),
    Secret(
        "password", '{"user": "admin", "password": "' + "fake-P4ss json" + '"}', ("fake-P4ss json",)
    ),
    Secret("password", "ran mysqldump --password=" + "Fake0penSesame", ("Fake0penSesame",)),
    Secret(
        "basic auth in URL",
        "docker login https://deploy:" + "FakeDeploy99" + "@registry.example.com/v2/",
        ("FakeDeploy99",),
    ),
    Secret("basic auth in URL", "ftp://user:" + "Fak3Ftp" + "@files.example.org/in", ("Fak3Ftp",)),
    Secret("secret", "client_secret: " + "FAKEclientSECRET123456", ("FAKEclientSECRET123456",)),
    Secret(
        "API key",
        "curl -H 'X-Api-Key: " + "FAKE0123456789abcdefXYZ" + "'",
        ("FAKE0123456789abcdefXYZ",),
    ),
    Secret("token", "?access_token=" + "fakeAccessTok3n0123" + "&page=2", ("fakeAccessTok3n0123",)),
    Secret("Google API key", f"maps key {GOOGLE_API_KEY} is over quota", (GOOGLE_API_KEY,)),
    Secret("basic auth header", f"Authorization: Basic {BASIC_HEADER}", (BASIC_HEADER,)),
)

ORDINARY: tuple[str, ...] = (
    "sha256 of the artifact is 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "image registry.example.com/team/api@sha256:"
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 fails to pull",
    "request id 3f2b8c1e-6d4a-4f7b-9a2e-1c5d8e7f6a3b in the gateway logs",
    "handoff 6fa459ea-ee8a-3ca4-894e-db77e160355e was created twice",
    "the regression came in with commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904",
    "git bisect points at a1b2c3d (Merge pull request #4812 from team/fix-timeouts)",
    'Traceback (most recent call last):\n  File "/app/auth/token.py", line 42, in refresh_token\n'
    "    raise TokenExpired(claims['exp'])\nauth.errors.TokenExpired: 1733560000",
    "KeyError: 'secret_key' raised in settings.py line 88",
    "java.lang.NullPointerException at com.example.billing.InvoiceService.charge"
    "(InvoiceService.java:212)",
    "pod api-7d9f8b6c5d-x2k4q is CrashLoopBackOff on node ip-10-0-3-17.ec2.internal",
    "kubectl get secret db-credentials -n payments -o yaml shows the key exists",
    "Connection to 10.0.3.17:5432 refused; 192.168.1.20 answers ping",
    "curl https://api.example.com/v1/health?verbose=true returns 503",
    "the app connects to postgres://db.internal:5432/orders without credentials in the URL",
    "mongodb+srv://cluster0.abcde.mongodb.net/prod resolves but the SRV lookup is slow",
    'psql: error: FATAL: password authentication failed for user "app"',
    "Error: invalid token: expired, and the refresh token was revoked",
    "the password: incorrect message appears after the third retry",
    "set max_tokens: 4096 and temperature=0.2 in the model config",
    "ssh git@github.com:org/repo.git works from the laptop but not from CI",
    "AccessDenied for arn:aws:iam::123456789012:role/deploy on s3:GetObject",
    'S3 ETag "9b2cf535f27731c974343645a3985328" differs from the local md5',
    "JWT validation failed: signature has expired (exp 2026-12-07T10:00:00Z)",
    "the token bucket refills at 10 requests per second per client",
    "upgrade from 1.24.3 to 1.25.0-rc.1 broke the ingress annotations",
    "we rotated the secret yesterday and the old pods still mount the previous version",
    "timeout after 30000 ms calling payments.internal:8443/charge",
    "docker run -e LOG_LEVEL=debug -p 8080:8080 api:2026.12.07",
    "lsof shows 1024 open files; ulimit -n is 4096",
    "OOMKilled: container api exceeded 512Mi; requests.memory=256Mi limits.memory=512Mi",
    "the base64 of the config map is eyJ9 which decodes to a brace",
    "dns: NXDOMAIN for payments-db.prod.svc.cluster.local from pod worker-5c9f7d8b4-qzx7n",
)
