"""beanstalkm: a typed beanstalkd client with a JSON message envelope.

``Client`` sends and receives :class:`Message` envelopes; ``Connection.queue``
is the typed low-level protocol layer generated from ``spec/api.json``.
"""

from __future__ import annotations

__version__ = "2.0.0"

from beanstalkm._core.base import DEFAULT_HOST, DEFAULT_PORT
from beanstalkm._core.cluster import ClusterStats, ServerHealth
from beanstalkm._core.envelope import SCHEMA as MESSAGE_SCHEMA
from beanstalkm._core.message import DEFAULT_TUBE, MessageBase
from beanstalkm._core.urls import default_urls
from beanstalkm._core.worker import (
    Backoff,
    BuryJob,
    DurationStats,
    FailureReason,
    FailureRecord,
    LeaseLost,
    RetryAfter,
    WorkerStats,
)
from beanstalkm._errors import (
    ArgumentTypeError,
    BatchFailed,
    BeanstalkmException,
    CommandFailed,
    CorruptJob,
    InvalidArgument,
    InvalidEnvelope,
    ProtocolError,
    SocketError,
    UnexpectedResponse,
)
from beanstalkm._generated import (
    DEFAULT_DELAY,
    DEFAULT_PRIORITY,
    DEFAULT_TTR,
    PROTOCOL_VERSION,
    STATUS_ERRORS,
    BadFormat,
    Buried,
    DeadlineSoon,
    Draining,
    ExpectedCrlf,
    InternalError,
    JobStats,
    JobTooBig,
    NotFound,
    NotIgnored,
    OutOfMemory,
    ServerStats,
    StatValue,
    TimedOut,
    TubeStats,
    UnknownCommand,
)
from beanstalkm._sync.client import Client
from beanstalkm._sync.cluster import Cluster
from beanstalkm._sync.connection import Connection, Pipeline
from beanstalkm._sync.message import Message
from beanstalkm._sync.worker import Worker

__all__ = [
    "DEFAULT_DELAY",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_PRIORITY",
    "DEFAULT_TTR",
    "DEFAULT_TUBE",
    "MESSAGE_SCHEMA",
    "PROTOCOL_VERSION",
    "STATUS_ERRORS",
    "ArgumentTypeError",
    "Backoff",
    "BadFormat",
    "BatchFailed",
    "BeanstalkmException",
    "Buried",
    "BuryJob",
    "Client",
    "Cluster",
    "ClusterStats",
    "CommandFailed",
    "Connection",
    "CorruptJob",
    "DeadlineSoon",
    "Draining",
    "DurationStats",
    "ExpectedCrlf",
    "FailureReason",
    "FailureRecord",
    "InternalError",
    "InvalidArgument",
    "InvalidEnvelope",
    "JobStats",
    "JobTooBig",
    "LeaseLost",
    "Message",
    "MessageBase",
    "NotFound",
    "NotIgnored",
    "OutOfMemory",
    "Pipeline",
    "ProtocolError",
    "RetryAfter",
    "ServerHealth",
    "ServerStats",
    "SocketError",
    "StatValue",
    "TimedOut",
    "TubeStats",
    "UnexpectedResponse",
    "UnknownCommand",
    "Worker",
    "WorkerStats",
    "__version__",
    "default_urls",
]
