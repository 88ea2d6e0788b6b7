// Package findingtest writes large synthetic scanner reports for benchmarks:
// they have the shape, indentation and element sizes of real ones, so the
// decoder does the work it does on real reports, and they are written as a
// stream, so a report of any size costs no memory to make.
package findingtest

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Summary says what a writer wrote.
type Summary struct {
	Findings int
	Bytes    int64
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

var (
	packages  = []string{"openssl", "libssl3", "zlib1g", "libxml2", "curl", "libcurl4", "bash", "glibc", "libc6", "systemd", "libsystemd0", "openssh-client", "gnutls28", "libgcrypt20", "libidn2-0", "perl-base", "tar", "util-linux", "libpcre3", "sqlite3"}
	words     = strings.Fields("a buffer overflow in the parser allows remote attackers to cause a denial of service or possibly execute arbitrary code via a crafted request an integer overflow use after free out of bounds read null pointer dereference in the handling of certificates when processing untrusted input")
	vendors   = []string{"nvd", "redhat", "ghsa", "ubuntu"}
	vectors   = []string{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"}
	scores    = []string{"9.8", "5.9", "7.8", "6.1"}
	sevs      = []string{"CRITICAL", "MEDIUM", "HIGH", "MEDIUM"}
	grypeSevs = []string{"Critical", "Medium", "High", "Medium"}
)

// WriteTrivy writes a Trivy JSON report (SchemaVersion 2) of an image with
// about size bytes: one OS-packages result holding nearly all the
// vulnerabilities, as trivy image does for a large distribution image, and a
// lockfile result. Each vulnerability is about 2.5 kB, as in real reports.
func WriteTrivy(w io.Writer, size int64, seed uint64) (Summary, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	cw := &countingWriter{w: bw}
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	var sum Summary
	fmt.Fprintf(cw, `{
  "SchemaVersion": 2,
  "Trivy": {
    "Version": "0.58.1"
  },
  "ReportID": "0193f0c2-7d5e-7f3a-9c1b-%012x",
  "CreatedAt": "2026-01-02T03:04:05.123456789Z",
  "ArtifactName": "registry.example.com/team/app:1.%d",
  "ArtifactType": "container_image",
  "Metadata": {
    "Size": 119199744,
    "OS": {
      "Family": "debian",
      "Name": "12.8"
    },
    "ImageID": "sha256:%064x",
    "RepoTags": [
      "registry.example.com/team/app:1.%d"
    ]
  },
  "Results": [
    {
      "Target": "registry.example.com/team/app (debian 12.8)",
      "Class": "os-pkgs",
      "Type": "debian",
      "Vulnerabilities": [`, seed, seed, seed, seed)
	var buf []byte
	for i := 0; cw.n < size-4096 || i == 0; i++ {
		buf = buf[:0]
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendVuln(buf, rng, i)
		if _, err := cw.Write(buf); err != nil {
			return sum, err
		}
		sum.Findings++
	}
	io.WriteString(cw, `
      ]
    },
    {
      "Target": "app/package-lock.json",
      "Class": "lang-pkgs",
      "Type": "npm",
      "Vulnerabilities": [`)
	buf = appendVuln(buf[:0], rng, sum.Findings)
	cw.Write(buf)
	sum.Findings++
	io.WriteString(cw, "\n      ]\n    }\n  ]\n}\n")
	if err := bw.Flush(); err != nil {
		return sum, err
	}
	sum.Bytes = cw.n
	return sum, nil
}

// appendVuln appends vulnerability i, indented as Trivy indents it.
func appendVuln(b []byte, rng *rand.Rand, i int) []byte {
	pkg := packages[i%len(packages)]
	year := 2015 + i%11
	cve := "CVE-" + strconv.Itoa(year) + "-" + strconv.Itoa(10000+i)
	k := rng.IntN(len(vectors))
	var desc strings.Builder
	for range 60 + rng.IntN(60) {
		desc.WriteString(words[rng.IntN(len(words))])
		desc.WriteByte(' ')
	}
	b = fmt.Appendf(b, `
        {
          "VulnerabilityID": %q,
          "PkgID": "%s@1.%d.%d-1",
          "PkgName": %q,
          "PkgIdentifier": {
            "PURL": "pkg:deb/debian/%s@1.%d.%d-1?arch=amd64\u0026distro=debian-12.8",
            "UID": "%016x"
          },
          "InstalledVersion": "1.%d.%d-1",
          "FixedVersion": "1.%d.%d-2",
          "Status": "fixed",
          "Layer": {
            "Digest": "sha256:%064x",
            "DiffID": "sha256:%064x"
          },
          "SeveritySource": %q,
          "PrimaryURL": "https://avd.aquasec.com/nvd/%s",
          "DataSource": {
            "ID": "debian",
            "Name": "Debian Security Tracker",
            "URL": "https://salsa.debian.org/security-tracker-team/security-tracker"
          },
          "Title": "%s: %s",
          "Description": %q,
          "Severity": %q,
          "CweIDs": [
            "CWE-%d"
          ],
          "VendorSeverity": {
            "debian": 2,
            "nvd": 3,
            "redhat": 2
          },
          "CVSS": {`,
		cve, pkg, i%10, i%7, pkg, pkg, i%10, i%7, rng.Uint64(), i%10, i%7, i%10, i%7, rng.Uint64(), rng.Uint64(),
		vendors[i%len(vendors)], strings.ToLower(cve), pkg, words[rng.IntN(len(words))], desc.String(), sevs[k], 100+rng.IntN(700))
	for j, v := range vendors[:2+i%3] {
		if j > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `
            %q: {
              "V3Vector": %q,
              "V3Score": %s
            }`, v, vectors[(k+j)%len(vectors)], scores[(k+j)%len(scores)])
	}
	b = append(b, "\n          },\n          \"References\": ["...)
	for j := range 4 + i%6 {
		if j > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, "\n            \"https://security-tracker.example.org/%s/advisory/%d\"", cve, j)
	}
	return fmt.Appendf(b, `
          ],
          "PublishedDate": "%d-0%d-1%dT10:15:00Z",
          "LastModifiedDate": "2025-0%d-1%dT12:00:00Z"
        }`, year, 1+i%9, i%10, 1+i%9, i%10)
}

// WriteGrype writes a Grype JSON report of about size bytes: matches first,
// then the source, distro and descriptor, in Grype's order — which makes
// the decoder read the matches twice (or copy them aside, from a pipe).
func WriteGrype(w io.Writer, size int64, seed uint64) (Summary, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	cw := &countingWriter{w: bw}
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	var sum Summary
	io.WriteString(cw, "{\n \"matches\": [")
	var buf []byte
	for i := 0; cw.n < size-4096 || i == 0; i++ {
		buf = buf[:0]
		if i > 0 {
			buf = append(buf, ',')
		}
		pkg := packages[i%len(packages)]
		cve := "CVE-" + strconv.Itoa(2015+i%11) + "-" + strconv.Itoa(10000+i)
		k := rng.IntN(len(vectors))
		var desc strings.Builder
		for range 60 + rng.IntN(60) {
			desc.WriteString(words[rng.IntN(len(words))])
			desc.WriteByte(' ')
		}
		buf = fmt.Appendf(buf, `
  {
   "vulnerability": {
    "id": %q,
    "dataSource": "https://security-tracker.debian.org/tracker/%s",
    "namespace": "debian:distro:debian:12",
    "severity": %q,
    "urls": [
     "https://security-tracker.debian.org/tracker/%s"
    ],
    "cvss": [],
    "fix": {
     "versions": [
      "1.%d.%d-2"
     ],
     "state": "fixed"
    },
    "advisories": []
   },
   "relatedVulnerabilities": [
    {
     "id": %q,
     "dataSource": "https://nvd.nist.gov/vuln/detail/%s",
     "namespace": "nvd:cpe",
     "severity": %q,
     "urls": [
      "https://nvd.nist.gov/vuln/detail/%s"
     ],
     "description": %q,
     "cvss": [
      {
       "source": "nvd@nist.gov",
       "type": "Primary",
       "version": "3.1",
       "vector": %q,
       "metrics": {
        "baseScore": %s,
        "exploitabilityScore": 3.9,
        "impactScore": 5.9
       },
       "vendorMetadata": {}
      }
     ]
    }
   ],
   "matchDetails": [
    {
     "type": "exact-direct-match",
     "matcher": "dpkg-matcher",
     "searchedBy": {
      "distro": {
       "type": "debian",
       "version": "12"
      },
      "namespace": "debian:distro:debian:12",
      "package": {
       "name": %q,
       "version": "1.%d.%d-1"
      }
     },
     "found": {
      "versionConstraint": "< 1.%d.%d-2 (deb)",
      "vulnerabilityID": %q
     }
    }
   ],
   "artifact": {
    "id": "%016x",
    "name": %q,
    "version": "1.%d.%d-1",
    "type": "deb",
    "locations": [
     {
      "path": "/var/lib/dpkg/status",
      "layerID": "sha256:%064x"
     }
    ],
    "language": "",
    "licenses": [],
    "cpes": [
     "cpe:2.3:a:%s:%s:1.%d.%d-1:*:*:*:*:*:*:*"
    ],
    "purl": "pkg:deb/debian/%s@1.%d.%d-1?arch=amd64\u0026distro=debian-12",
    "upstreams": []
   }
  }`, cve, cve, grypeSevs[k], cve, i%10, i%7, cve, cve, grypeSevs[k], cve, desc.String(), vectors[k], scores[k],
			pkg, i%10, i%7, i%10, i%7, cve, rng.Uint64(), pkg, i%10, i%7, rng.Uint64(), pkg, pkg, i%10, i%7, pkg, i%10, i%7)
		if _, err := cw.Write(buf); err != nil {
			return sum, err
		}
		sum.Findings++
	}
	fmt.Fprintf(cw, `
 ],
 "source": {
  "type": "image",
  "target": {
   "userInput": "registry.example.com/team/app:1.%d",
   "imageID": "sha256:%064x"
  }
 },
 "distro": {
  "name": "debian",
  "version": "12"
 },
 "descriptor": {
  "name": "grype",
  "version": "0.86.1",
  "timestamp": "2026-01-02T03:04:05.123456789Z"
 }
}
`, seed, seed)
	if err := bw.Flush(); err != nil {
		return sum, err
	}
	sum.Bytes = cw.n
	return sum, nil
}
