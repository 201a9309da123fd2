"""Exports of the ledger's image records into standard provenance formats: W3C PROV-JSON, an
in-toto Statement v1, and a signed C2PA manifest embedded in a PNG.

A ledger transaction is given as ``{"tx": hex id, "height": int, "time_us": int, "signer": hex
node id}``. Images are named by their pixel digests (``prosima.provenance.pixels``), weights by their
state digests. Every identifier lives under ``https://prosima.invalid/ns#`` or a ``urn:prosima:``
namespace, so nothing here is ever looked up on the network.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prov.model import PROV_TYPE, Namespace, ProvDocument

import prosima
from prosima.errors import InputError
from prosima.optional import require
from prosima.provenance.records import AnchorRecord, RestorationRecord

if TYPE_CHECKING:  # importing model_versions at run time would pull in torch
    from prosima.provenance.model_versions import ModelVersion

Tx = dict[str, Any]

NS_URI = "https://prosima.invalid/ns#"
PROSIMA = Namespace("prosima", NS_URI)
PIXELS = Namespace("pixels", "urn:prosima:pixels:")
WEIGHTS = Namespace("weights", "urn:prosima:weights:")
FINGERPRINT = Namespace("fingerprint", "urn:prosima:fingerprint:")
TX = Namespace("tx", "urn:prosima:tx:")
NODE = Namespace("node", "urn:prosima:node:")

INTOTO_STATEMENT = "https://in-toto.io/Statement/v1"
ANCHOR_PREDICATE = "https://prosima.invalid/predicates/image-anchor/v1"
RESTORATION_PREDICATE = "https://prosima.invalid/predicates/restoration/v1"
VERIFICATION_PREDICATE = "https://prosima.invalid/predicates/verification/v1"
PIXELS_DIGEST = "prosima-pixels-sha256"  # SHA-256 of canonical pixels, not of any file's bytes

C2PA_LABEL = "invalid.prosima.provenance"  # reverse-domain label of prosima.invalid
IPTC_SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/"
# A restoration edits a captured image with a trained generative model: every output pixel is the
# model's, made from the captured input and conditioned on the anchored original. IPTC's "trained"
# terms are those for machine-learned models; of them, compositeWithTrainedAlgorithmicMedia ("a mix of
# captured and trained-model content") fits, not trainedAlgorithmicMedia (made from nothing captured)
# nor algorithmicallyEnhanced ("minor augmentation or correction by algorithm"), which would hide
# that a generative model can synthesise structure (outside the field of view, for one).
RESTORATION_SOURCE_TYPE = "compositeWithTrainedAlgorithmicMedia"
CREATED_SOURCE_TYPE = "trainedAlgorithmicMedia"
PARENT_ID = "prosima-restored-input"
INGREDIENT_FORMATS = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".dcm": "application/dicom",
}
CERT_FILES = {"ca": "ca.pem", "chain": "signer-chain.pem", "key": "signer.key"}


class ExportError(InputError, ValueError):
    """Records that do not belong together, or an export that cannot be made."""


@dataclass(frozen=True)
class Verified:
    """The image a verification was about and what it is to the record it was matched with (the
    original, or a restoration's output, of pixel digest ``record_pixels``): ``status`` is the
    verdict's (anchored-original, recorded-restoration, tampered, changed). ``file_sha256`` is the
    SHA-256 of the verified file's bytes; its name is never exported (it may name a patient)."""

    pixels: str
    status: str
    ok: bool
    record_pixels: str
    differing_shards: tuple[int, ...] = ()
    file_sha256: str | None = None

    @property
    def relation(self) -> str:
        """How it relates to the record's image: the same pixels, changed from them (it shares shards
        with them), or only nearest to them by fingerprint (it shares none)."""
        if self.pixels == self.record_pixels:
            return "same pixels"
        return "changed from" if self.status == "tampered" else "nearest by fingerprint"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pixels": self.pixels,
            "status": self.status,
            "ok": self.ok,
            "relation": self.relation,
            "recordPixels": self.record_pixels,
            "differingShards": list(self.differing_shards),
        }
        if self.file_sha256 is not None:
            out["fileSha256"] = self.file_sha256
        return out


def _time(tx: Tx) -> dt.datetime:
    """A transaction's time (microseconds since the epoch) as an aware UTC datetime."""
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(tx["time_us"]))


def _check(anchor_tx: Tx, restoration: RestorationRecord | None, restoration_tx: Tx | None) -> None:
    for name, tx in (("anchor_tx", anchor_tx), ("restoration_tx", restoration_tx)):
        if tx is not None and not {"tx", "height", "time_us", "signer"} <= set(tx):
            raise ExportError(f"{name} needs tx, height, time_us and signer, got {sorted(tx)}")
    if (restoration is None) != (restoration_tx is None):
        raise ExportError("a restoration and its transaction come together")
    if restoration is not None and restoration.original != anchor_tx["tx"]:
        raise ExportError(
            f"the restoration was conditioned on anchor {restoration.original}, not on {anchor_tx['tx']}"
        )


def _tx_attrs(tx: Tx) -> dict[Any, Any]:
    return {PROSIMA["tx"]: TX[tx["tx"]], PROSIMA["height"]: int(tx["height"]), PROSIMA["time"]: _time(tx)}


def _node(doc: ProvDocument, tx: Tx) -> Any:
    """The agent for the node that signed ``tx`` (made once per node)."""
    found = doc.get_record(NODE[tx["signer"]])
    return found[0] if found else doc.agent(NODE[tx["signer"]], {PROV_TYPE: PROSIMA["LedgerNode"]})


def _entity(doc: ProvDocument, name: Any, attrs: dict[Any, Any]) -> Any:
    """The entity ``name``, made once: a second mention adds its attributes to the first."""
    found = doc.get_record(name)
    if not found:
        return doc.entity(name, attrs)
    found[0].add_attributes(attrs)
    return found[0]


def _model_attrs(model: ModelVersion) -> dict[Any, Any]:
    attrs: dict[Any, Any] = {PROSIMA["modelKind"]: model.kind, PROSIMA["modelVersionName"]: model.name}
    if model.round is not None:
        attrs[PROSIMA["round"]] = int(model.round)
    if model.config_digest:
        attrs[PROSIMA["configDigest"]] = model.config_digest
    if model.metrics:
        attrs[PROSIMA["metrics"]] = json.dumps(model.metrics, sort_keys=True)
    return attrs


def _add_anchor(doc: ProvDocument, anchor: AnchorRecord, tx: Tx) -> dict[str, Any]:
    """The anchoring: the encoder made the fingerprint of the original; a node committed it."""
    original = _entity(
        doc,
        PIXELS[anchor.pixels],
        {
            PROV_TYPE: PROSIMA["Image"],
            PROSIMA["role"]: "original",
            PROSIMA["shape"]: json.dumps(list(anchor.shape)),
            PROSIMA["merkleRoot"]: anchor.root.hex(),
            PROSIMA["shards"]: int(anchor.k),
            PROSIMA["recordVersion"]: int(anchor.version),
            # how it was stored, and its keyed instance link: never an identifier or file name
            **{PROSIMA[f"source_{k}"]: v for k, v in sorted(anchor.source.items())},
            **{PROSIMA[f"link_{k}"]: v for k, v in sorted(anchor.link.items())},
        },
    )
    encoder = _entity(
        doc, WEIGHTS[anchor.encoder], {PROV_TYPE: PROSIMA["ModelWeights"], PROSIMA["role"]: "encoder"}
    )
    fingerprint = _entity(doc, FINGERPRINT[anchor.fingerprint], {PROV_TYPE: PROSIMA["Fingerprint"]})
    anchoring = doc.activity(
        PROSIMA[f"anchor-{tx['tx']}"],
        endTime=_time(tx),
        other_attributes={PROV_TYPE: PROSIMA["Anchoring"], **_tx_attrs(tx)},
    )
    doc.used(anchoring, original)
    doc.used(anchoring, encoder)
    doc.wasGeneratedBy(fingerprint, anchoring, _time(tx))
    doc.wasDerivedFrom(fingerprint, original, anchoring)
    doc.wasAssociatedWith(anchoring, _node(doc, tx))
    return {"original": original, "fingerprint": fingerprint, "encoder": encoder}


def _add_restoration(doc: ProvDocument, restoration: RestorationRecord, tx: Tx, made: dict[str, Any]) -> Any:
    """The restoration: the generator made the restored image from the input and the fingerprint."""
    weights = _entity(
        doc,
        WEIGHTS[restoration.model],
        {
            PROV_TYPE: PROSIMA["ModelWeights"],
            PROSIMA["role"]: "generator",
            PROSIMA["modelName"]: restoration.model_name,
        },
    )
    degraded = _entity(doc, PIXELS[restoration.input_pixels], {PROV_TYPE: PROSIMA["Image"]})
    if degraded is not made["original"]:
        degraded.add_attributes({PROSIMA["role"]: "input"})
    restored = _entity(
        doc, PIXELS[restoration.output_pixels], {PROV_TYPE: PROSIMA["Image"], PROSIMA["role"]: "restored"}
    )
    restoring = doc.activity(
        PROSIMA[f"restoration-{tx['tx']}"],
        endTime=_time(tx),
        other_attributes={
            PROV_TYPE: PROSIMA["Restoration"],
            **_tx_attrs(tx),
            **{PROSIMA[f"param_{k}"]: v for k, v in sorted(restoration.params.items())},
        },
    )
    for used in (degraded, weights, made["fingerprint"]):
        doc.used(restoring, used)
    doc.wasGeneratedBy(restored, restoring, _time(tx))
    doc.wasDerivedFrom(restored, degraded, restoring)
    doc.wasDerivedFrom(restored, made["fingerprint"], restoring)
    doc.wasAssociatedWith(restoring, _node(doc, tx))
    return weights


def _prov(
    anchor: AnchorRecord,
    anchor_tx: Tx,
    restoration: RestorationRecord | None,
    restoration_tx: Tx | None,
    model: ModelVersion | None,
    verified: Verified | None = None,
) -> ProvDocument:
    _check(anchor_tx, restoration, restoration_tx)
    if verified is not None:
        _check_verified(verified, anchor, restoration)
    doc = ProvDocument()
    for ns in (PROSIMA, PIXELS, WEIGHTS, FINGERPRINT, TX, NODE):
        doc.add_namespace(ns)
    made = _add_anchor(doc, anchor, anchor_tx)
    models = {anchor.encoder: made["encoder"]}
    if restoration is not None and restoration_tx is not None:
        models[restoration.model] = _add_restoration(doc, restoration, restoration_tx, made)
    if model is not None:
        if model.digest not in models:
            raise ExportError(f"model version {model.digest} is neither the encoder nor the generator here")
        models[model.digest].add_attributes(_model_attrs(model))
        if model.parent:
            parent = _entity(doc, WEIGHTS[model.parent], {PROV_TYPE: PROSIMA["ModelWeights"]})
            doc.wasRevisionOf(models[model.digest], parent)
    if verified is not None:
        _add_verified(doc, verified)
    return doc


def _add_verified(doc: ProvDocument, verified: Verified) -> None:
    """The verified image: the record's own image when the pixels are the same; else an entity of its
    own, derived from the record's image as a changed copy (it shares shards with it), or only
    influenced by it (the nearest by fingerprint, sharing no shard: no derivation is shown)."""
    attrs: dict[Any, Any] = {PROSIMA["verifiedStatus"]: verified.status, PROSIMA["verifiedOk"]: verified.ok}
    if verified.file_sha256 is not None:
        attrs[PROSIMA["fileSha256"]] = verified.file_sha256
    record_image = _entity(doc, PIXELS[verified.record_pixels], {})
    if verified.relation == "same pixels":
        record_image.add_attributes(attrs)
        return
    image = _entity(
        doc,
        PIXELS[verified.pixels],
        {
            PROV_TYPE: PROSIMA["Image"],
            PROSIMA["role"]: "verified",
            PROSIMA["differingShards"]: json.dumps(list(verified.differing_shards)),
            **attrs,
        },
    )
    relation = PROSIMA["relation"]
    if verified.relation == "changed from":
        doc.wasDerivedFrom(
            image,
            record_image,
            other_attributes={PROV_TYPE: PROSIMA["ChangedCopy"], relation: verified.relation},
        )
    else:
        doc.wasInfluencedBy(image, record_image, other_attributes={relation: verified.relation})


def prov_json(
    anchor: AnchorRecord,
    anchor_tx: Tx,
    restoration: RestorationRecord | None = None,
    restoration_tx: Tx | None = None,
    model: ModelVersion | None = None,
    verified: Verified | None = None,
) -> str:
    """The records as a W3C PROV-JSON document (text)."""
    text = _prov(anchor, anchor_tx, restoration, restoration_tx, model, verified).serialize(format="json")
    assert text is not None  # without a destination the document is returned
    return text


def prov_document(
    anchor: AnchorRecord,
    anchor_tx: Tx,
    restoration: RestorationRecord | None = None,
    restoration_tx: Tx | None = None,
    model: ModelVersion | None = None,
    verified: Verified | None = None,
) -> dict[str, Any]:
    """The records as a parsed W3C PROV-JSON document: the original image, its fingerprint and the
    encoder used by the anchoring; with a restoration, the restored image generated by it from the
    input, the fingerprint and the generator weights, each activity associated with its signing node;
    with ``verified``, the image a verification was about and its relation to the record's image."""
    return json.loads(prov_json(anchor, anchor_tx, restoration, restoration_tx, model, verified))


def _check_verified(verified: Verified, anchor: AnchorRecord, restoration: RestorationRecord | None) -> None:
    """The verified image is compared with the record's image: the restoration's output, if any."""
    image = restoration.output_pixels if restoration is not None else anchor.pixels
    if verified.record_pixels != image:
        raise ExportError(
            f"the verification compared pixels {verified.record_pixels}, not the record's image {image}"
        )


def _tx_json(tx: Tx) -> dict[str, Any]:
    return {
        "tx": tx["tx"],
        "height": int(tx["height"]),
        "time_us": int(tx["time_us"]),
        "signer": tx["signer"],
    }


def intoto_statement(
    anchor: AnchorRecord,
    anchor_tx: Tx,
    restoration: RestorationRecord | None = None,
    restoration_tx: Tx | None = None,
    model: ModelVersion | None = None,
    subject_file: str | Path | bytes | None = None,
    verified: Verified | None = None,
) -> dict[str, Any]:
    """An in-toto Statement v1 about the restored image (or, without a restoration, the original);
    with ``verified``, about the image a verification was about (``VERIFICATION_PREDICATE``: the
    verdict, its relation to the record's image, and the records).

    The subject's digest is its pixel digest under ``prosima-pixels-sha256`` and, for real file
    bytes, their ``sha256`` (what in-toto tools match a file by): ``subject_file`` (a path, named by
    its file name, or the bytes themselves) or ``verified.file_sha256``. Written by hand: the
    Statement is a small fixed JSON layout and needs no library.
    """
    _check(anchor_tx, restoration, restoration_tx)
    pixels = restoration.output_pixels if restoration is not None else anchor.pixels
    if verified is not None:
        _check_verified(verified, anchor, restoration)
        pixels = verified.pixels
    subject: dict[str, Any] = {"name": f"pixels:{pixels}", "digest": {PIXELS_DIGEST: pixels}}
    if verified is not None and verified.file_sha256 is not None:
        subject["digest"]["sha256"] = verified.file_sha256
    if subject_file is not None:
        data = subject_file if isinstance(subject_file, bytes) else Path(subject_file).read_bytes()
        if not isinstance(subject_file, bytes):
            subject["name"] = Path(subject_file).name
        subject["digest"]["sha256"] = hashlib.sha256(data).hexdigest()
    predicate: dict[str, Any] = {"anchor": anchor.to_json(), "anchorTx": _tx_json(anchor_tx)}
    if verified is not None:
        predicate["verification"] = verified.to_json()
    if restoration is not None and restoration_tx is not None:
        predicate["restoration"] = restoration.to_json()
        predicate["restorationTx"] = _tx_json(restoration_tx)
        predicate["model"] = {"digest": restoration.model, "name": restoration.model_name}
    if model is not None:
        if model.digest not in {anchor.encoder, restoration.model if restoration else None}:
            raise ExportError(f"model version {model.digest} is neither the encoder nor the generator here")
        predicate["modelVersion"] = asdict(model)
    return {
        "_type": INTOTO_STATEMENT,
        "subject": [subject],
        "predicateType": (
            VERIFICATION_PREDICATE
            if verified is not None
            else RESTORATION_PREDICATE
            if restoration is not None
            else ANCHOR_PREDICATE
        ),
        "predicate": predicate,
    }


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "prosima"),
        ]
    )


def _usage(*, sign: bool) -> x509.KeyUsage:
    flags = dict.fromkeys(
        ["content_commitment", "key_encipherment", "data_encipherment", "key_agreement"], False
    )
    return x509.KeyUsage(
        digital_signature=sign,
        key_cert_sign=not sign,
        crl_sign=not sign,
        encipher_only=False,
        decipher_only=False,
        **flags,
    )


def make_cert_chain(cert_dir: str | Path, days: int = 3650) -> dict[str, Path]:
    """A self-made ES256 (P-256) chain for C2PA in ``cert_dir``, made once and then reused: a CA
    (``ca.pem``; its key is not kept) and a signing end-entity certificate with digitalSignature and
    the emailProtection EKU that C2PA accepts (``signer-chain.pem`` = signer then CA, ``signer.key``)."""
    folder = Path(cert_dir)
    paths = {k: folder / v for k, v in CERT_FILES.items()}
    if all(p.is_file() for p in paths.values()):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def build(subject: str, public: Any, ca: bool) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(_name("prosima test CA"))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
            .add_extension(_usage(sign=not ca), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        )

    ca_cert = build("prosima test CA", ca_key.public_key(), True).sign(ca_key, hashes.SHA256())
    ee_cert = (
        build("prosima signer", key.public_key(), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths["key"].touch(mode=0o600)
    paths["key"].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    paths["ca"].write_bytes(ca_cert.public_bytes(pem))
    paths["chain"].write_bytes(ee_cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    return paths


def _offline_context(c2pa: Any, ca_pem: str | None) -> Any:
    """A c2pa Context that never goes to the network: no remote manifests, no OCSP, no thumbnail."""
    settings: dict[str, Any] = {
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
        "builder": {"thumbnail": {"enabled": False}, "claim_generator_info": {"name": "prosima"}},
    }
    if ca_pem is not None:
        settings["trust"] = {"user_anchors": ca_pem}
    return c2pa.Context.from_dict(settings)


def _faithful(store: dict[str, Any], crjson: dict[str, Any]) -> dict[str, Any]:
    """Put back the data of custom JSON assertions from the crJSON report: the plain report turns
    integer arrays into truncated base64 byte strings (contentauth/c2pa-rs#2570; stored data is intact)."""
    exact = {m.get("label"): m.get("assertions", {}) for m in crjson.get("manifests", [])}
    for label, manifest in store.get("manifests", {}).items():
        for assertion in manifest.get("assertions", []):
            name = assertion.get("label", "")
            if assertion.get("kind") == "Json" and name in exact.get(label, {}):
                assertion["data"] = exact[label][name]
    return store


def read_c2pa(png: str | Path, cert_dir: str | Path | None = None) -> dict[str, Any]:
    """The C2PA manifest store of ``png`` as JSON (manifests, validation results and state),
    read offline; the CA in ``cert_dir`` is trusted when given. Raises c2pa's error when there is none."""
    c2pa = require("c2pa", "c2pa")
    ca_pem = (Path(cert_dir) / CERT_FILES["ca"]).read_text() if cert_dir is not None else None
    with c2pa.Reader(str(png), context=_offline_context(c2pa, ca_pem)) as reader:
        return _faithful(json.loads(reader.json()), json.loads(reader.crjson()))


def embed_c2pa(
    png_in: str | Path,
    png_out: str | Path,
    assertions: dict[str, Any],
    cert_dir: str | Path,
    source_type: str | None = None,
    *,
    parent: str | Path | None = None,
    when: dt.datetime | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """Sign a C2PA manifest into a copy of ``png_in`` at ``png_out``, offline (no timestamp authority).

    ``assertions`` maps custom assertion labels to JSON data (``{C2PA_LABEL: intoto_statement(...)}``).
    With ``parent`` (the image that was restored into ``png_in``) the actions are ``c2pa.opened`` of
    ``parent`` as the ``parentOf`` ingredient, then ``c2pa.edited`` of the IPTC digital source type
    ``source_type`` (default ``RESTORATION_SOURCE_TYPE``); without, a ``c2pa.created`` action (default
    ``trainedAlgorithmicMedia``: made by a model from nothing captured). ``when`` (aware) dates the
    action; ``description`` says what was done. The signer is the chain of ``make_cert_chain(cert_dir)``.
    Returns the manifest store read back (``read_c2pa``).

    No trusted timestamp: an RFC 3161 time-stamp token comes from a Time-Stamp Authority over the
    network (the signer's ``ta_url``), which signing offline cannot reach, and one made here by a
    self-run authority would only repeat this machine's clock. The time that can be checked is the
    ledger's: pass the restoration transaction's time as ``when``; the quorum-signed block holding that
    transaction (its inclusion proof) is the evidence, and the in-toto statement carries both.
    """
    c2pa = require("c2pa", "c2pa")
    if not assertions or any(not isinstance(k, str) or k.startswith("c2pa.") for k in assertions):
        raise ExportError(f"assertions need custom labels (not c2pa.*), got {sorted(map(str, assertions))}")
    if when is not None and when.tzinfo is None:
        raise ExportError("when must be an aware datetime (a transaction's time is UTC)")
    certs = make_cert_chain(cert_dir)
    action: dict[str, Any] = {"softwareAgent": {"name": "prosima", "version": prosima.__version__}}
    if when is not None:
        action["when"] = when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if description:
        action["description"] = description
    if parent is None:
        actions = [
            {
                "action": "c2pa.created",
                "digitalSourceType": IPTC_SOURCE + (source_type or CREATED_SOURCE_TYPE),
                **action,
            }
        ]
    else:
        actions = [
            {"action": "c2pa.opened", "parameters": {"ingredientIds": [PARENT_ID]}},
            {
                "action": "c2pa.edited",
                "digitalSourceType": IPTC_SOURCE + (source_type or RESTORATION_SOURCE_TYPE),
                **action,
            },
        ]
    manifest = {
        "title": Path(png_out).name,
        "format": "image/png",
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": actions}},
            *({"label": k, "kind": "Json", "data": v} for k, v in assertions.items()),
        ],
    }
    info = c2pa.C2paSignerInfo(
        c2pa.C2paSigningAlg.ES256, certs["chain"].read_bytes(), certs["key"].read_bytes(), None
    )  # ta_url None: no timestamp authority, so signing needs no network (see the docstring)
    context = _offline_context(c2pa, certs["ca"].read_text())
    with (
        c2pa.Signer.from_info(info) as signer,
        c2pa.Builder(manifest, context=context) as builder,
        open(png_in, "rb") as src,
        open(png_out, "w+b") as dst,
    ):
        if parent is not None:
            _add_parent(builder, Path(parent))
        builder.sign(signer, "image/png", src, dst)
    return read_c2pa(png_out, cert_dir)


def _add_parent(builder: Any, parent: Path) -> None:
    """``parent`` as the manifest's ``parentOf`` ingredient, titled by its suffix only (its name may
    name a patient); a C2PA manifest it already carries becomes part of the provenance chain."""
    fmt = INGREDIENT_FORMATS.get(parent.suffix.lower(), "application/octet-stream")
    ingredient = {
        "title": f"restored input{parent.suffix.lower()}",
        "format": fmt,
        "relationship": "parentOf",
        "instance_id": PARENT_ID,
    }
    with parent.open("rb") as stream:
        builder.add_ingredient(ingredient, fmt, stream)
