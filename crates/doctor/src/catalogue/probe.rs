use super::Check;

pub(super) const CHECKS: &[Check] = &[
    Check {
        id: "probe.dns",
        title: "DNS resolution of the host name",
        why: "Every new connection pays for name resolution first. A slow resolver, a missing AAAA answer that times out, or a name that resolves to a dead address turns into a slow or failing connect that looks like a slow database.",
        fix: "Point the client at a resolver that answers in milliseconds (a local caching resolver such as systemd-resolved, nscd or dnsmasq), fix or remove the record that times out, or connect by IP address. Give the client's DNS lookup its own timeout.",
        verify: "dig +stats HOST A; dig +stats HOST AAAA   # 'Query time' in ms, status NOERROR",
    },
    Check {
        id: "probe.tcp",
        title: "TCP connect to each resolved address",
        why: "A refused or silently dropped SYN (firewall, security group, full listen backlog, conntrack table) costs a full connect timeout before the client tries the next address.",
        fix: "Open the port to the client's network, remove dead addresses from DNS, raise the server's listen backlog (somaxconn) if connects are slow only under load.",
        verify: "nc -vz -w 2 HOST PORT   # for each address the name resolves to",
    },
    Check {
        id: "probe.tls",
        title: "TLS negotiation and handshake, certificate chain and expiry",
        why: "A TLS handshake adds round trips to every new connection; an expired, untrusted or misnamed certificate makes verifying clients fail outright, and non-verifying clients open to interception.",
        fix: "Renew the certificate before it expires, include the intermediate chain, put the host name clients use in subjectAltName, and have clients verify it (sslmode=verify-full). Pool connections so the handshake is paid once, not per request.",
        verify: "openssl s_client -connect HOST:PORT -servername HOST -starttls postgres </dev/null | openssl x509 -noout -dates -subject -ext subjectAltName   # -starttls mysql for MySQL; no -starttls for rediss",
    },
    Check {
        id: "probe.auth",
        title: "Protocol startup and authentication (method actually used)",
        why: "Authentication is a server-side cost on every new connection (SCRAM iterates a hash thousands of times, LDAP/PAM call out to another service). A slow or failing authentication is the common cause of 'connects are slow' when DNS and TCP are fast.",
        fix: "Use a pooler so authentication happens once per server connection; prefer scram-sha-256 (PostgreSQL) / caching_sha2_password (MySQL); check that the external auth service (LDAP, PAM) answers quickly; give login its own timeout.",
        verify: "Run the doctor again and compare the auth phase; PostgreSQL: SELECT * FROM pg_hba_file_rules;",
    },
    Check {
        id: "probe.query",
        title: "First query after login",
        why: "A slow first query after a fast login points at server-side session start-up: catalog cache warm-up, a login trigger, an overloaded server or a saturated CPU.",
        fix: "Look at server load (CPU, I/O wait) and at what runs on session start (ALTER ROLE ... SET, login event triggers, init_connect in MySQL).",
        verify: "Run the doctor again; the query phase should take about one network round trip.",
    },
    Check {
        id: "probe.round_trips",
        title: "Latency distribution of trivial round trips",
        why: "The spread between p50 and p99 of a trivial query is network jitter plus server scheduling delay; every real query pays it, and a chatty client pays it many times per request.",
        fix: "Move the client closer to the server (same zone), fix packet loss, reduce server CPU saturation; batch statements to pay fewer round trips.",
        verify: "dbwarden doctor URL --only probe --samples 200",
    },
];
