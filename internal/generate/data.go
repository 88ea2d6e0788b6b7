package generate

// The pools below are what makes the synthetic data look like a real
// scanner's: well-known vulnerabilities with their real products, versions
// and NVD vectors, plausible products for made-up CVEs, a fleet of hosts.

// knownCVE is a real, well-known vulnerability.
type knownCVE struct {
	ID          string
	Product     string
	Installed   string
	Fixed       string
	Vector      string  // NVD CVSS v3.1 vector
	NVDScore    float64 // NVD base score, checked against the vector in tests
	Description string
	Extra       string // a reference besides NVD and CVE.org, or ""
	Platform    platform
}

var knownCVEs = []knownCVE{
	{"CVE-2021-44228", "log4j-core", "2.14.1", "2.15.0", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0,
		"Log4Shell: JNDI lookups in Apache Log4j 2 message patterns let a remote attacker who controls log messages execute arbitrary code loaded from an LDAP server.",
		"https://logging.apache.org/log4j/2.x/security.html", anyOS},
	{"CVE-2021-45046", "log4j-core", "2.15.0", "2.16.0", "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:H/A:H", 9.0,
		"The fix for CVE-2021-44228 in Apache Log4j 2.15.0 was incomplete in certain non-default configurations, still allowing remote code execution through crafted Thread Context Map data.",
		"https://logging.apache.org/log4j/2.x/security.html", anyOS},
	{"CVE-2014-0160", "openssl", "1.0.1f", "1.0.1g", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5,
		"Heartbleed: the TLS heartbeat extension in OpenSSL 1.0.1 before 1.0.1g does not check a length field, letting a remote attacker read up to 64 KB of process memory per request, including private keys.",
		"https://heartbleed.com/", linuxOS},
	{"CVE-2022-3602", "openssl", "3.0.6", "3.0.7", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5,
		"A buffer overrun in OpenSSL 3.0 X.509 certificate verification (punycode name constraint checking) can be triggered by a crafted email address in a certificate, causing a crash.",
		"", linuxOS},
	{"CVE-2023-4863", "libwebp", "1.3.1", "1.3.2", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 8.8,
		"A heap buffer overflow in libwebp's lossless decoder (BuildHuffmanTable) lets a remote attacker perform an out-of-bounds write via a crafted WebP image.",
		"", anyOS},
	{"CVE-2024-3094", "xz-utils", "5.6.1", "5.6.2", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0,
		"Malicious code in the upstream xz 5.6.0 and 5.6.1 release tarballs modifies liblzma during the build; linked into sshd through systemd, it lets the attacker holding the key bypass authentication.",
		"https://www.openwall.com/lists/oss-security/2024/03/29/4", linuxOS},
	{"CVE-2014-6271", "bash", "4.3", "4.3.25", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8,
		"Shellshock: GNU Bash through 4.3 processes trailing strings after function definitions in environment variables, letting a remote attacker execute commands through CGI scripts, DHCP clients and similar.",
		"", linuxOS},
	{"CVE-2017-5638", "struts2-core", "2.3.31", "2.3.32", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0,
		"The Jakarta Multipart parser in Apache Struts 2 mishandles a crafted Content-Type header, letting a remote attacker execute arbitrary OGNL expressions and commands.",
		"", anyOS},
	{"CVE-2021-4034", "polkit", "0.105", "0.120", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8,
		"PwnKit: pkexec in polkit mishandles an empty argument vector and re-introduces unsafe environment variables, letting a local user gain root privileges.",
		"", linuxOS},
	{"CVE-2021-3156", "sudo", "1.9.5p1", "1.9.5p2", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8,
		"Baron Samedit: an off-by-one heap-based buffer overflow in sudo's command-line unescaping lets any local user gain root privileges, even without being listed in sudoers.",
		"", linuxOS},
	{"CVE-2022-0847", "linux-kernel", "5.16.10", "5.16.11", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8,
		"Dirty Pipe: uninitialised pipe buffer flags in the Linux kernel let an unprivileged local user overwrite data in read-only files and escalate privileges.",
		"", linuxOS},
	{"CVE-2016-5195", "linux-kernel", "4.8.2", "4.8.3", "CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.0,
		"Dirty COW: a race condition in the Linux kernel's copy-on-write handling of private read-only memory mappings lets a local user gain write access and escalate privileges.",
		"", linuxOS},
	{"CVE-2022-22965", "spring-beans", "5.3.17", "5.3.18", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8,
		"Spring4Shell: a Spring MVC or WebFlux application on JDK 9+ may be vulnerable to remote code execution through data binding of class loader properties.",
		"", anyOS},
	{"CVE-2022-42889", "commons-text", "1.9", "1.10.0", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8,
		"Text4Shell: Apache Commons Text variable interpolation enables script, dns and url lookups by default, letting untrusted input execute code or contact remote servers.",
		"", anyOS},
	{"CVE-2023-44487", "nghttp2", "1.56.0", "1.57.0", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5,
		"HTTP/2 Rapid Reset: request cancellation can reset many streams quickly, letting a remote client exhaust server resources (exploited in the wild in 2023).",
		"", linuxOS},
	{"CVE-2023-38545", "curl", "8.3.0", "8.4.0", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8,
		"A heap buffer overflow in curl's SOCKS5 proxy handshake: a long host name may be copied into a too-small buffer when name resolution is delegated to the proxy.",
		"https://curl.se/docs/CVE-2023-38545.html", anyOS},
	{"CVE-2021-41773", "apache2", "2.4.49", "2.4.50", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5,
		"A path normalisation flaw in Apache HTTP Server 2.4.49 lets a remote attacker map URLs to files outside the document root and, with CGI enabled, execute code.",
		"", linuxOS},
	{"CVE-2024-6387", "openssh-server", "9.7p1", "9.8p1", "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.1,
		"regreSSHion: a signal handler race condition in OpenSSH's sshd (glibc-based Linux) lets an unauthenticated remote attacker execute code as root.",
		"", linuxOS},
	{"CVE-2023-4911", "glibc", "2.37", "2.39", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8,
		"Looney Tunables: a buffer overflow in the GNU C Library's dynamic loader processing of GLIBC_TUNABLES lets a local user gain root through setuid programs.",
		"", linuxOS},
	{"CVE-2024-21626", "runc", "1.1.11", "1.1.12", "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H", 8.6,
		"Leaky Vessels: an internal file descriptor leak in runc lets a container process gain access to the host filesystem through its working directory.",
		"", linuxOS},
	{"CVE-2023-46604", "activemq", "5.18.2", "5.18.3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8,
		"Deserialization of untrusted data in the Apache ActiveMQ OpenWire protocol lets a remote attacker run arbitrary shell commands.",
		"", anyOS},
}

// platform says which hosts a product installs on.
type platform uint8

const (
	anyOS platform = iota
	linuxOS
	windowsOS
)

// product is a package made-up CVEs are filed against.
type product struct {
	Name      string
	Platform  platform
	Component string   // the part of the product in descriptions
	Input     string   // what an attacker sends it, in descriptions
	Web       bool     // a web application: web flaws (XSS, SQL injection) apply
	Majors    []string // version prefixes, e.g. "1.24" → 1.24.<patch>
	PatchMax  int
}

var products = []product{
	{"openssl", linuxOS, "TLS handshake code", "a crafted TLS ClientHello", false, []string{"1.1.1", "3.0", "3.1", "3.2"}, 14},
	{"nginx", linuxOS, "HTTP/2 module", "a crafted HTTP/2 request", false, []string{"1.18", "1.20", "1.22", "1.24", "1.25"}, 4},
	{"apache2", linuxOS, "mod_proxy module", "a crafted HTTP request", false, []string{"2.4"}, 58},
	{"openssh-server", linuxOS, "sshd privilege separation", "a crafted SSH key exchange packet", false, []string{"8.2", "8.9", "9.0", "9.3", "9.6"}, 1},
	{"curl", anyOS, "URL parser", "a crafted URL", false, []string{"7.81", "7.88", "8.4", "8.5"}, 1},
	{"libxml2", linuxOS, "XML parser", "a crafted XML document", false, []string{"2.9", "2.10", "2.11"}, 14},
	{"zlib", linuxOS, "inflate implementation", "a crafted compressed stream", false, []string{"1.2", "1.3"}, 13},
	{"glibc", linuxOS, "getaddrinfo implementation", "a crafted DNS response", false, []string{"2.31", "2.35", "2.36"}, 9},
	{"sudo", linuxOS, "sudoedit command", "a crafted command line", false, []string{"1.8", "1.9"}, 15},
	{"python3", anyOS, "email module", "a crafted email message", false, []string{"3.8", "3.9", "3.10", "3.11", "3.12"}, 18},
	{"nodejs", anyOS, "HTTP server", "a crafted HTTP request", false, []string{"16.20", "18.19", "20.11"}, 2},
	{"postgresql", linuxOS, "query planner", "a crafted SQL query", false, []string{"13", "14", "15", "16"}, 12},
	{"mysql-server", anyOS, "InnoDB storage engine", "a crafted SQL statement", false, []string{"8.0"}, 36},
	{"redis", linuxOS, "Lua scripting engine", "a crafted Lua script", false, []string{"6.2", "7.0", "7.2"}, 14},
	{"tomcat", anyOS, "AJP connector", "a crafted AJP message", false, []string{"9.0", "10.1"}, 85},
	{"jackson-databind", anyOS, "polymorphic type handling", "a crafted JSON document", false, []string{"2.12", "2.13", "2.14"}, 5},
	{"linux-kernel", linuxOS, "netfilter subsystem", "a crafted netlink message", false, []string{"5.4", "5.10", "5.15", "6.1", "6.6"}, 200},
	{"git", anyOS, "submodule handling", "a crafted repository", false, []string{"2.34", "2.39", "2.43"}, 3},
	{"sqlite", anyOS, "query parser", "a crafted SQL query", false, []string{"3.39", "3.40", "3.44"}, 4},
	{"libpng", linuxOS, "chunk decoder", "a crafted PNG image", false, []string{"1.6"}, 40},
	{"containerd", linuxOS, "image unpacker", "a crafted container image", false, []string{"1.6", "1.7"}, 25},
	{"grafana", anyOS, "dashboard API", "a crafted dashboard", true, []string{"9.5", "10.2", "10.4"}, 6},
	{"jenkins", anyOS, "CLI command parser", "a crafted CLI request", true, []string{"2.426", "2.440"}, 3},
	{"php", linuxOS, "phar extension", "a crafted phar archive", false, []string{"8.1", "8.2", "8.3"}, 26},
	{"dotnet-runtime", windowsOS, "System.Text.Json deserializer", "a crafted JSON payload", false, []string{"6.0", "8.0"}, 25},
	{"Microsoft Edge", windowsOS, "PDF viewer", "a crafted PDF file", false, []string{"121.0.2277", "122.0.2365"}, 110},
	{"Google Chrome", windowsOS, "V8 JavaScript engine", "a crafted web page", false, []string{"120.0.6099", "121.0.6167"}, 230},
	{"PowerShell", windowsOS, "remoting endpoint", "a crafted remoting session", false, []string{"7.2", "7.4"}, 18},
	{"Notepad++", windowsOS, "plugin loader", "a crafted plugin file", false, []string{"8.5", "8.6"}, 8},
	{"wordpress", linuxOS, "REST API", "a crafted REST request", true, []string{"6.3", "6.4", "6.5"}, 4},
	{"gitlab-ce", linuxOS, "merge request API", "a crafted API request", true, []string{"16.7", "16.8", "16.9"}, 6},
	{"keycloak", anyOS, "admin console", "a crafted redirect URI", true, []string{"22.0", "23.0", "24.0"}, 5},
	{"OpenJDK", anyOS, "Hotspot compiler", "crafted Java bytecode", false, []string{"11.0", "17.0", "21.0"}, 21},
}

// vulnClass is a kind of flaw: the description's wording and the CVSS
// metric values that go with it, each a set of choices with weights.
type vulnClass struct {
	Weight                     int
	Web                        bool   // only for web applications
	Text                       string // fmt: product, component, input
	AV, AC, PR, UI, S, C, I, A string
}

// Metric strings list values with weights: "N3L1" means N three times as
// likely as L.
var vulnClasses = []vulnClass{
	{20, false, "A heap-based buffer overflow in the %[2]s of %[1]s allows a remote attacker to execute arbitrary code via %[3]s.", "N9A1", "L4H1", "N3L1", "N3R1", "U6C1", "H1", "H1", "H1"},
	{12, false, "Improper input validation in the %[2]s of %[1]s allows a remote attacker to cause a denial of service via %[3]s.", "N1", "L3H1", "N1", "N1", "U1", "N1", "N1", "H3L1"},
	{10, false, "An out-of-bounds read in the %[2]s of %[1]s may disclose sensitive memory contents to a remote attacker via %[3]s.", "N4A1", "L2H1", "N2L1", "N2R1", "U1", "H2L1", "N1", "N2L1"},
	{10, false, "A use-after-free in the %[2]s of %[1]s allows a local user to escalate privileges.", "L1", "L3H1", "L4N1", "N1", "U5C1", "H1", "H1", "H1"},
	{8, true, "A cross-site scripting flaw in the %[2]s of %[1]s lets a remote attacker inject script into pages viewed by other users via %[3]s.", "N1", "L1", "N2L1", "R1", "C1", "L1", "L1", "N1"},
	{8, true, "An SQL injection in the %[2]s of %[1]s lets an authenticated attacker read or modify data via %[3]s.", "N1", "L1", "L3N1", "N1", "U1", "H1", "H1L1", "N1H1"},
	{8, false, "A path traversal in the %[2]s of %[1]s lets a remote attacker read arbitrary files via %[3]s.", "N1", "L1", "N2L1", "N1", "U1", "H1", "N1", "N1"},
	{6, false, "Improper certificate validation in the %[2]s of %[1]s allows a machine-in-the-middle attacker to spoof servers.", "N1", "H1", "N1", "N1", "U1", "H1", "H1", "N1"},
	{6, false, "An integer overflow in the %[2]s of %[1]s may crash the process when handling %[3]s.", "N2L1", "H1", "N1", "R1", "U1", "N1", "N1", "L2H1"},
	{5, false, "Sensitive information is written to log files by the %[2]s of %[1]s, readable by local administrators.", "L1", "L1", "H1", "N1", "U1", "L1", "N1", "N1"},
	{4, false, "A missing authentication check in the %[2]s of %[1]s allows an attacker with physical access to bypass security controls.", "P1", "L1", "N1", "N1", "U1", "H1", "H1", "H1"},
	{3, false, "A race condition in the %[2]s of %[1]s may let a local user read temporary files of other users.", "L1", "H1", "L1", "N1", "U1", "L1", "N1", "N1"},
}

var statuses = []struct {
	Name   string
	Weight int
}{
	{"Open", 55}, {"In Progress", 12}, {"Fixed", 14}, {"Mitigated", 8},
	{"Accepted Risk", 7}, {"False Positive", 4},
}

var linuxOSNames = []string{
	"Ubuntu 22.04.4 LTS", "Ubuntu 20.04.6 LTS", "Ubuntu 24.04 LTS", "Debian GNU/Linux 12 (bookworm)",
	"Debian GNU/Linux 11 (bullseye)", "Red Hat Enterprise Linux 9.3", "Red Hat Enterprise Linux 8.9",
	"Rocky Linux 9.3", "Amazon Linux 2023", "SUSE Linux Enterprise Server 15 SP5", "Alpine Linux 3.19",
}

var windowsOSNames = []string{
	"Windows Server 2022 Datacenter", "Windows Server 2019 Standard", "Windows Server 2016 Standard",
	"Windows 11 Enterprise 23H2", "Windows 10 Enterprise 22H2",
}

var (
	linuxRoles   = []string{"web", "app", "api", "db", "cache", "k8s-node", "jump", "ci", "mq", "log", "mail", "vpn", "dns", "proxy", "etl"}
	windowsRoles = []string{"DC", "FS", "SQL", "RDS", "APP", "WEB", "EXCH", "PRINT"}
	envs         = []string{"prod", "prod", "prod", "stg", "dev", "qa"}
	regions      = []string{"eu", "us", "ap", "uk"}
	domains      = []string{"corp.contoso.com", "fabrikam.local", "prod.woodgrove.net"}
)
