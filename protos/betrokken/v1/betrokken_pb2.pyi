from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EvaluationUse(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVALUATION_USE_UNSPECIFIED: _ClassVar[EvaluationUse]
    QUESTION: _ClassVar[EvaluationUse]
    IMPORT: _ClassVar[EvaluationUse]
    ACCESS_REQUEST: _ClassVar[EvaluationUse]

class ReplyStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPLY_STATUS_UNSPECIFIED: _ClassVar[ReplyStatus]
    ANSWERED: _ClassVar[ReplyStatus]
    UNREACHABLE: _ClassVar[ReplyStatus]
    FAILED: _ClassVar[ReplyStatus]
EVALUATION_USE_UNSPECIFIED: EvaluationUse
QUESTION: EvaluationUse
IMPORT: EvaluationUse
ACCESS_REQUEST: EvaluationUse
REPLY_STATUS_UNSPECIFIED: ReplyStatus
ANSWERED: ReplyStatus
UNREACHABLE: ReplyStatus
FAILED: ReplyStatus

class EvaluateRequest(_message.Message):
    __slots__ = ("blinded_elements", "organisations", "use", "purpose", "role", "on_behalf_of")
    BLINDED_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    ORGANISATIONS_FIELD_NUMBER: _ClassVar[int]
    USE_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ON_BEHALF_OF_FIELD_NUMBER: _ClassVar[int]
    blinded_elements: _containers.RepeatedScalarFieldContainer[bytes]
    organisations: _containers.RepeatedScalarFieldContainer[str]
    use: EvaluationUse
    purpose: str
    role: str
    on_behalf_of: str
    def __init__(self, blinded_elements: _Optional[_Iterable[bytes]] = ..., organisations: _Optional[_Iterable[str]] = ..., use: _Optional[_Union[EvaluationUse, str]] = ..., purpose: _Optional[str] = ..., role: _Optional[str] = ..., on_behalf_of: _Optional[str] = ...) -> None: ...

class KeyEvaluation(_message.Message):
    __slots__ = ("organisation", "key_id", "evaluated_elements", "proof")
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    organisation: str
    key_id: str
    evaluated_elements: _containers.RepeatedScalarFieldContainer[bytes]
    proof: bytes
    def __init__(self, organisation: _Optional[str] = ..., key_id: _Optional[str] = ..., evaluated_elements: _Optional[_Iterable[bytes]] = ..., proof: _Optional[bytes] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("evaluations", "quota_remaining")
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    QUOTA_REMAINING_FIELD_NUMBER: _ClassVar[int]
    evaluations: _containers.RepeatedCompositeFieldContainer[KeyEvaluation]
    quota_remaining: int
    def __init__(self, evaluations: _Optional[_Iterable[_Union[KeyEvaluation, _Mapping]]] = ..., quota_remaining: _Optional[int] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ("organisation",)
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    organisation: str
    def __init__(self, organisation: _Optional[str] = ...) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("organisation", "key_id", "public_key", "suite")
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SUITE_FIELD_NUMBER: _ClassVar[int]
    organisation: str
    key_id: str
    public_key: bytes
    suite: str
    def __init__(self, organisation: _Optional[str] = ..., key_id: _Optional[str] = ..., public_key: _Optional[bytes] = ..., suite: _Optional[str] = ...) -> None: ...

class LogProof(_message.Message):
    __slots__ = ("record", "leaf_index", "tree_size", "checkpoint", "inclusion_proof", "consistency_size", "consistency_proof")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_SIZE_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_PROOF_FIELD_NUMBER: _ClassVar[int]
    record: bytes
    leaf_index: int
    tree_size: int
    checkpoint: str
    inclusion_proof: _containers.RepeatedScalarFieldContainer[bytes]
    consistency_size: int
    consistency_proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, record: _Optional[bytes] = ..., leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ..., checkpoint: _Optional[str] = ..., inclusion_proof: _Optional[_Iterable[bytes]] = ..., consistency_size: _Optional[int] = ..., consistency_proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class CosignRequest(_message.Message):
    __slots__ = ("checkpoint", "old_size", "consistency_proof")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_PROOF_FIELD_NUMBER: _ClassVar[int]
    checkpoint: str
    old_size: int
    consistency_proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, checkpoint: _Optional[str] = ..., old_size: _Optional[int] = ..., consistency_proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class CosignResponse(_message.Message):
    __slots__ = ("cosignature",)
    COSIGNATURE_FIELD_NUMBER: _ClassVar[int]
    cosignature: str
    def __init__(self, cosignature: _Optional[str] = ...) -> None: ...

class WitnessedRequest(_message.Message):
    __slots__ = ("size",)
    SIZE_FIELD_NUMBER: _ClassVar[int]
    size: int
    def __init__(self, size: _Optional[int] = ...) -> None: ...

class WitnessedResponse(_message.Message):
    __slots__ = ("checkpoint", "at_size")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    AT_SIZE_FIELD_NUMBER: _ClassVar[int]
    checkpoint: str
    at_size: str
    def __init__(self, checkpoint: _Optional[str] = ..., at_size: _Optional[str] = ...) -> None: ...

class LookupRequest(_message.Message):
    __slots__ = ("question", "envelope", "proof")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    question: str
    envelope: bytes
    proof: LogProof
    def __init__(self, question: _Optional[str] = ..., envelope: _Optional[bytes] = ..., proof: _Optional[_Union[LogProof, _Mapping]] = ...) -> None: ...

class LookupResponse(_message.Message):
    __slots__ = ("reply", "witnessed_size", "node_tags", "tag_signature")
    REPLY_FIELD_NUMBER: _ClassVar[int]
    WITNESSED_SIZE_FIELD_NUMBER: _ClassVar[int]
    NODE_TAGS_FIELD_NUMBER: _ClassVar[int]
    TAG_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    reply: bytes
    witnessed_size: int
    node_tags: _containers.RepeatedScalarFieldContainer[str]
    tag_signature: bytes
    def __init__(self, reply: _Optional[bytes] = ..., witnessed_size: _Optional[int] = ..., node_tags: _Optional[_Iterable[str]] = ..., tag_signature: _Optional[bytes] = ...) -> None: ...

class Envelope(_message.Message):
    __slots__ = ("node", "sealed")
    NODE_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    node: str
    sealed: bytes
    def __init__(self, node: _Optional[str] = ..., sealed: _Optional[bytes] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("question", "envelopes", "witnessed_size")
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    WITNESSED_SIZE_FIELD_NUMBER: _ClassVar[int]
    question: str
    envelopes: _containers.RepeatedCompositeFieldContainer[Envelope]
    witnessed_size: int
    def __init__(self, question: _Optional[str] = ..., envelopes: _Optional[_Iterable[_Union[Envelope, _Mapping]]] = ..., witnessed_size: _Optional[int] = ...) -> None: ...

class NodeReply(_message.Message):
    __slots__ = ("label", "status", "reply", "problem")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    label: str
    status: ReplyStatus
    reply: bytes
    problem: str
    def __init__(self, label: _Optional[str] = ..., status: _Optional[_Union[ReplyStatus, str]] = ..., reply: _Optional[bytes] = ..., problem: _Optional[str] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("answer_id", "replies", "receipt", "answered_at")
    ANSWER_ID_FIELD_NUMBER: _ClassVar[int]
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_AT_FIELD_NUMBER: _ClassVar[int]
    answer_id: str
    replies: _containers.RepeatedCompositeFieldContainer[NodeReply]
    receipt: LogProof
    answered_at: str
    def __init__(self, answer_id: _Optional[str] = ..., replies: _Optional[_Iterable[_Union[NodeReply, _Mapping]]] = ..., receipt: _Optional[_Union[LogProof, _Mapping]] = ..., answered_at: _Optional[str] = ...) -> None: ...

class CheckpointRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CheckpointResponse(_message.Message):
    __slots__ = ("checkpoint", "time")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    checkpoint: str
    time: str
    def __init__(self, checkpoint: _Optional[str] = ..., time: _Optional[str] = ...) -> None: ...

class ConsistencyRequest(_message.Message):
    __slots__ = ("old_size", "new_size")
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEW_SIZE_FIELD_NUMBER: _ClassVar[int]
    old_size: int
    new_size: int
    def __init__(self, old_size: _Optional[int] = ..., new_size: _Optional[int] = ...) -> None: ...

class ConsistencyBatchRequest(_message.Message):
    __slots__ = ("old_sizes", "new_size")
    OLD_SIZES_FIELD_NUMBER: _ClassVar[int]
    NEW_SIZE_FIELD_NUMBER: _ClassVar[int]
    old_sizes: _containers.RepeatedScalarFieldContainer[int]
    new_size: int
    def __init__(self, old_sizes: _Optional[_Iterable[int]] = ..., new_size: _Optional[int] = ...) -> None: ...

class ProofBatchResponse(_message.Message):
    __slots__ = ("proofs",)
    PROOFS_FIELD_NUMBER: _ClassVar[int]
    proofs: _containers.RepeatedCompositeFieldContainer[ProofResponse]
    def __init__(self, proofs: _Optional[_Iterable[_Union[ProofResponse, _Mapping]]] = ...) -> None: ...

class InclusionRequest(_message.Message):
    __slots__ = ("leaf_index", "tree_size")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ...) -> None: ...

class ProofResponse(_message.Message):
    __slots__ = ("hashes",)
    HASHES_FIELD_NUMBER: _ClassVar[int]
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class RecordRequest(_message.Message):
    __slots__ = ("leaf_index", "tree_size")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ...) -> None: ...

class RecordResponse(_message.Message):
    __slots__ = ("record", "hashes")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    record: bytes
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, record: _Optional[bytes] = ..., hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class DeliverRequest(_message.Message):
    __slots__ = ("answer_id", "label", "kind", "sealed", "signature")
    ANSWER_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    answer_id: str
    label: str
    kind: str
    sealed: bytes
    signature: bytes
    def __init__(self, answer_id: _Optional[str] = ..., label: _Optional[str] = ..., kind: _Optional[str] = ..., sealed: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class DeliverResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CollectRequest(_message.Message):
    __slots__ = ("acknowledge",)
    ACKNOWLEDGE_FIELD_NUMBER: _ClassVar[int]
    acknowledge: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, acknowledge: _Optional[_Iterable[int]] = ...) -> None: ...

class MailMessage(_message.Message):
    __slots__ = ("id", "answer_id", "sender", "label", "kind", "sealed", "signature")
    ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    id: int
    answer_id: str
    sender: str
    label: str
    kind: str
    sealed: bytes
    signature: bytes
    def __init__(self, id: _Optional[int] = ..., answer_id: _Optional[str] = ..., sender: _Optional[str] = ..., label: _Optional[str] = ..., kind: _Optional[str] = ..., sealed: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class CollectResponse(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[MailMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[MailMessage, _Mapping]]] = ...) -> None: ...

class FeedChange(_message.Message):
    __slots__ = ("operation", "bsn", "since", "until", "open", "contact", "reference", "domain", "domain_only", "advice", "reactivate")
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    BSN_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_ONLY_FIELD_NUMBER: _ClassVar[int]
    ADVICE_FIELD_NUMBER: _ClassVar[int]
    REACTIVATE_FIELD_NUMBER: _ClassVar[int]
    operation: str
    bsn: str
    since: str
    until: str
    open: bool
    contact: str
    reference: str
    domain: str
    domain_only: bool
    advice: str
    reactivate: bool
    def __init__(self, operation: _Optional[str] = ..., bsn: _Optional[str] = ..., since: _Optional[str] = ..., until: _Optional[str] = ..., open: _Optional[bool] = ..., contact: _Optional[str] = ..., reference: _Optional[str] = ..., domain: _Optional[str] = ..., domain_only: _Optional[bool] = ..., advice: _Optional[str] = ..., reactivate: _Optional[bool] = ...) -> None: ...

class FeedRequest(_message.Message):
    __slots__ = ("idempotency_key", "changes")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    changes: _containers.RepeatedCompositeFieldContainer[FeedChange]
    def __init__(self, idempotency_key: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[FeedChange, _Mapping]]] = ...) -> None: ...

class FeedProblem(_message.Message):
    __slots__ = ("type", "title", "status", "detail", "title_en", "detail_en", "reason", "reason_en")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    TITLE_EN_FIELD_NUMBER: _ClassVar[int]
    DETAIL_EN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_EN_FIELD_NUMBER: _ClassVar[int]
    type: str
    title: str
    status: int
    detail: str
    title_en: str
    detail_en: str
    reason: str
    reason_en: str
    def __init__(self, type: _Optional[str] = ..., title: _Optional[str] = ..., status: _Optional[int] = ..., detail: _Optional[str] = ..., title_en: _Optional[str] = ..., detail_en: _Optional[str] = ..., reason: _Optional[str] = ..., reason_en: _Optional[str] = ...) -> None: ...

class FeedResult(_message.Message):
    __slots__ = ("index", "operation", "outcome", "active_until", "problem")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_UNTIL_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    index: int
    operation: str
    outcome: str
    active_until: str
    problem: FeedProblem
    def __init__(self, index: _Optional[int] = ..., operation: _Optional[str] = ..., outcome: _Optional[str] = ..., active_until: _Optional[str] = ..., problem: _Optional[_Union[FeedProblem, _Mapping]] = ...) -> None: ...

class FeedResponse(_message.Message):
    __slots__ = ("results", "counts")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[FeedResult]
    counts: _containers.ScalarMap[str, int]
    def __init__(self, results: _Optional[_Iterable[_Union[FeedResult, _Mapping]]] = ..., counts: _Optional[_Mapping[str, int]] = ...) -> None: ...
