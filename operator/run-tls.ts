// Issues a run's TLS material (lib/tls.ts says how it is used): a CA of its own and one
// certificate it signs, for the name every run client checks plus the run's Service names, so
// that tools such as grpcurl can also verify by DNS name. RSA 2048 keys and the signatures from
// Node's crypto (keys generated on libuv's thread pool: the operator's event loop never waits on
// them); the certificates' structure from node-forge (Node can parse X.509 but not create it). Kept
// in the run token Secret and never rotated: the certificate outlives any realistic run
// (VALIDITY_DAYS), and a run that needs new ones is deleted and applied again.
import { generateKeyPair, randomBytes, sign } from "node:crypto";
import { promisify } from "node:util";
import forge from "node-forge";
import { TLS_KEYS, TLS_SERVER_NAME } from "../lib/tls.js";
import { names } from "./labels.js";

export const VALIDITY_DAYS = 825; // the longest that common TLS clients accept for a leaf
const DAY_MS = 24 * 3600 * 1000;

export interface IssueOptions {
  /** Shown in the certificates' subjects, e.g. "ml/qwen-7b". */
  run: string;
  /** DNS names the certificate also carries (the run's Services). */
  dnsNames: string[];
  now: Date;
}

/** The Secret data (base64 values) holding ca.crt, tls.crt and tls.key. */
export async function issueRunTls(o: IssueOptions): Promise<Record<string, string>> {
  const [caKeys, leafKeys] = await Promise.all([rsaKeys(), rsaKeys()]);
  const ca = certificate({
    subject: `l0 run CA ${o.run}`,
    publicKey: caKeys.publicKey,
    now: o.now,
    extensions: [
      { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  ca.setIssuer(ca.subject.attributes);
  signWith(ca, caKeys.privatePem);
  const altNames = [TLS_SERVER_NAME, "localhost", ...o.dnsNames].map((value) => ({ type: 2, value }));
  const leaf = certificate({
    subject: `l0 run ${o.run}`,
    publicKey: leafKeys.publicKey,
    now: o.now,
    extensions: [
      { name: "basicConstraints", cA: false, critical: true },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
      { name: "extKeyUsage", serverAuth: true, clientAuth: true },
      { name: "subjectAltName", altNames: [...altNames, { type: 7, ip: "127.0.0.1" }] },
    ],
  });
  leaf.setIssuer(ca.subject.attributes);
  signWith(leaf, caKeys.privatePem);
  const b64 = (pem: string): string => Buffer.from(pem).toString("base64");
  return {
    [TLS_KEYS.ca]: b64(forge.pki.certificateToPem(ca)),
    [TLS_KEYS.cert]: b64(forge.pki.certificateToPem(leaf)),
    [TLS_KEYS.key]: b64(leafKeys.privatePem),
  };
}

const generateRsa = promisify(generateKeyPair);

async function rsaKeys(): Promise<{ publicKey: forge.pki.rsa.PublicKey; privatePem: string }> {
  const { publicKey, privateKey } = await generateRsa("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return {
    publicKey: forge.pki.publicKeyFromPem(publicKey) as forge.pki.rsa.PublicKey,
    privatePem: privateKey,
  };
}

// forge exports the TBSCertificate builder its own sign() uses, but its types omit it.
const forgePki = forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 };

/** What forge's cert.sign() does (SHA-256 with RSA), the signature made by Node's native RSA. */
function signWith(cert: forge.pki.Certificate, issuerKeyPem: string): void {
  const oid = forge.pki.oids.sha256WithRSAEncryption!;
  cert.signatureOid = oid;
  cert.siginfo.algorithmOid = oid;
  const tbs = forge.asn1.toDer(forgePki.getTBSCertificate(cert)).getBytes();
  cert.signature = sign("sha256", Buffer.from(tbs, "binary"), issuerKeyPem).toString("binary");
}

function certificate(o: {
  subject: string;
  publicKey: forge.pki.rsa.PublicKey;
  now: Date;
  extensions: object[];
}): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = o.publicKey;
  // A positive 128-bit serial (RFC 5280: at most 20 octets, non-negative).
  cert.serialNumber = "01" + randomBytes(15).toString("hex");
  cert.validity.notBefore = new Date(o.now.getTime() - DAY_MS); // tolerates clock skew between nodes
  cert.validity.notAfter = new Date(o.now.getTime() + VALIDITY_DAYS * DAY_MS);
  cert.setSubject([{ name: "commonName", value: o.subject.slice(0, 64) }]);
  cert.setExtensions(o.extensions);
  return cert;
}

/** The run's Service names a certificate also carries (short and fully qualified). */
export function runDnsNames(run: string, namespace: string): string[] {
  const services = [names.hubService(run), names.inference(run)];
  const short = services.map((svc) => `${svc}.${namespace}.svc`);
  return [
    ...short,
    ...short.map((n) => `${n}.cluster.local`),
    `*.${names.trainerService(run)}.${namespace}.svc`,
    `*.${names.trainerService(run)}.${namespace}.svc.cluster.local`,
  ];
}
