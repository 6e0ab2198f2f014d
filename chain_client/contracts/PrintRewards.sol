// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {BoxRegistry} from "./BoxRegistry.sol";
import {ThreeDPToken} from "./ThreeDPToken.sol";

/// @title Proof-of-print anchors and cumulative reward claims
/// @notice Verifiers anchor Merkle roots of accepted print receipts. k of the n verifier keys sign (EIP-712) a
/// box's lifetime earned total; claim() mints total - paid[boxKey] to the box's registered owner, so a missed
/// claim is covered by the next one and a replay pays nothing. Emission per epoch and the token's cap both hold.
contract PrintRewards is AccessControl, EIP712 {
    bytes32 public constant ANCHOR_ROLE = keccak256("ANCHOR_ROLE");
    bytes32 public constant CLAIM_TYPEHASH = keccak256("Claim(bytes32 boxKey,uint256 total,uint256 deadline)");

    struct Anchor {
        uint64 epoch;
        uint32 count;
        uint64 anchoredAt; // block timestamp; zero: never anchored
    }

    /// The state a claim reads and writes, in one storage slot.
    struct ClaimState {
        uint64 epoch; // epoch of `epochMinted`
        uint128 epochMinted; // minted by claims in that epoch
        uint32 verifierSet; // id of the current verifier set
        uint8 threshold; // k
    }

    ThreeDPToken public immutable token;
    BoxRegistry public immutable registry;
    uint256 public immutable epochLength; // seconds
    uint256 public immutable epochLimit; // token units (wei) claims may mint per epoch

    mapping(bytes32 boxKey => uint256) public paid;
    mapping(bytes32 root => Anchor) public anchors;
    mapping(address signer => uint32) private _verifierSetOf;
    address[] private _verifiers;
    ClaimState private _state;

    event Anchored(bytes32 indexed root, uint64 indexed epoch, uint32 count, address sender);
    event Claimed(bytes32 indexed boxKey, address indexed owner, uint256 total, uint256 amount);
    event VerifiersSet(uint32 indexed verifierSet, address[] keys, uint8 threshold);

    error InvalidAnchor(bytes32 root, uint32 count);
    error AlreadyAnchored(bytes32 root);
    error InvalidVerifierSet();
    error ClaimExpired(uint256 deadline, uint256 timestamp);
    error BoxNotRegistered(bytes32 boxKey);
    error NotEnoughSignatures(uint256 given, uint256 threshold);
    error InvalidSignature(uint256 index);
    error UnknownSigner(address signer);
    error DuplicateSigner(address signer);
    error SignersNotAscending(address signer);
    error NothingToClaim(bytes32 boxKey, uint256 total, uint256 paid);
    error EpochLimitExceeded(uint256 epoch, uint256 minted, uint256 amount, uint256 limit);
    error InvalidEpochSettings();

    constructor(
        address admin,
        BoxRegistry registry_,
        uint256 epochLength_,
        uint256 epochLimit_
    ) EIP712("MIPAI Rewards", "1") {
        if (epochLength_ == 0 || epochLimit_ == 0 || epochLimit_ > type(uint128).max) revert InvalidEpochSettings();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        registry = registry_;
        epochLength = epochLength_;
        epochLimit = epochLimit_;
        token = new ThreeDPToken(address(this));
    }

    /// @notice Record the Merkle root of one batch of `count` accepted receipts of `epoch`.
    function anchor(bytes32 root, uint64 epoch, uint32 count) external onlyRole(ANCHOR_ROLE) {
        if (root == bytes32(0) || count == 0) revert InvalidAnchor(root, count);
        if (anchors[root].anchoredAt != 0) revert AlreadyAnchored(root);
        anchors[root] = Anchor(epoch, count, uint64(block.timestamp));
        emit Anchored(root, epoch, count, msg.sender);
    }

    /// @notice True when `root` is anchored and `proof` proves `leaf` in it (OpenZeppelin MerkleProof).
    function verifyInclusion(bytes32 leaf, bytes32[] calldata proof, bytes32 root) external view returns (bool) {
        return anchors[root].anchoredAt != 0 && MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// @notice The StandardMerkleTree leaf of a receipt: keccak256(keccak256(abi.encode(receiptHash, boxKey, reward))).
    function leafOf(bytes32 receiptHash, bytes32 boxKey, uint256 reward) external pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(receiptHash, boxKey, reward))));
    }

    /// @notice Replace the verifier (oracle) keys and the number k of them a claim needs.
    function setVerifiers(address[] calldata keys, uint8 k) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (k == 0 || k > keys.length || keys.length > type(uint8).max) revert InvalidVerifierSet();
        uint32 setId = _state.verifierSet + 1;
        for (uint256 i = 0; i < keys.length; i++) {
            address key = keys[i];
            if (key == address(0) || _verifierSetOf[key] == setId) revert InvalidVerifierSet();
            _verifierSetOf[key] = setId;
        }
        _verifiers = keys;
        _state.verifierSet = setId;
        _state.threshold = k;
        emit VerifiersSet(setId, keys, k);
    }

    /// @notice The current verifier keys and k.
    function verifiers() external view returns (address[] memory keys, uint8 k) {
        return (_verifiers, _state.threshold);
    }

    /// @notice The current epoch and what claims minted in it.
    function emission() external view returns (uint256 epoch, uint256 minted) {
        epoch = block.timestamp / epochLength;
        minted = _state.epoch == epoch ? _state.epochMinted : 0;
    }

    /// @notice The EIP-712 digest the verifiers sign for a claim.
    function claimDigest(bytes32 boxKey, uint256 total, uint256 deadline) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(CLAIM_TYPEHASH, boxKey, total, deadline)));
    }

    /// @notice Pay the box's owner what its signed lifetime `total` adds to what was paid before.
    /// @param signatures at least k signatures (65 bytes r||s||v) of distinct verifier keys, ordered by signer
    /// address, ascending.
    function claim(bytes32 boxKey, uint256 total, uint256 deadline, bytes[] calldata signatures) external {
        if (block.timestamp > deadline) revert ClaimExpired(deadline, block.timestamp);
        ClaimState memory state = _state;
        if (signatures.length < state.threshold || state.threshold == 0) {
            revert NotEnoughSignatures(signatures.length, state.threshold);
        }
        bytes32 digest = claimDigest(boxKey, total, deadline);
        address previous = address(0);
        for (uint256 i = 0; i < signatures.length; i++) {
            (address signer, ECDSA.RecoverError err, ) = ECDSA.tryRecoverCalldata(digest, signatures[i]);
            if (err != ECDSA.RecoverError.NoError) revert InvalidSignature(i);
            if (_verifierSetOf[signer] != state.verifierSet) revert UnknownSigner(signer);
            if (signer == previous) revert DuplicateSigner(signer);
            if (signer < previous) revert SignersNotAscending(signer);
            previous = signer;
        }
        address owner = registry.payee(boxKey);
        if (owner == address(0)) revert BoxNotRegistered(boxKey);
        uint256 before = paid[boxKey];
        if (total <= before) revert NothingToClaim(boxKey, total, before);
        uint256 amount = total - before;

        uint256 epoch = block.timestamp / epochLength;
        uint256 minted = state.epoch == epoch ? state.epochMinted : 0;
        if (minted + amount > epochLimit) revert EpochLimitExceeded(epoch, minted, amount, epochLimit);
        state.epoch = uint64(epoch);
        state.epochMinted = uint128(minted + amount);
        _state = state;
        paid[boxKey] = total;

        token.mint(owner, amount);
        emit Claimed(boxKey, owner, total, amount);
    }
}
